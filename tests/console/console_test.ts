// The web console end to end, as an operator uses it: Debian's chromium (playwright-core) against
// a real controller process and a real `aegis` daemon. Sign in, add a host, take the enroll
// command from the page, enroll a real daemon with it, watch its row turn Connected without a
// reload, open it, run `echo hi`, tag it, revoke it. The same pages as readonly show no controls,
// and forged changes are refused. A login link signs in once. Screenshots of each page are saved
// to docs/console/ (the README names the folder).
import assert from "node:assert/strict";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { type ControllerProcess, startControllerProcess } from "../support/controller.ts";
import { makeHost } from "../support/host.ts";
import { CONTROLLER_MAIN, ROOT, runDeno } from "../support/processes.ts";
import { TEST_DB_KIND } from "../support/db.ts";
import { browserMissing, collectPageProblems, launchBrowser } from "../support/browser.ts";
import { FakeIdp, idpKey } from "../security/fake_idp.ts";

const missing = browserMissing();
if (missing) console.warn(`console_test skipped: ${missing}`);
const opts = { sanitizeOps: false, sanitizeResources: false, ignore: missing !== undefined };
const SHOTS = `${ROOT}docs/console`;

async function shot(page: Page, name: string) {
  await Deno.mkdir(SHOTS, { recursive: true });
  await page.screenshot({ path: `${SHOTS}/${name}.png`, fullPage: true });
}

async function loginLink(controller: ControllerProcess, tenant: string, role: string) {
  const out = await runDeno(CONTROLLER_MAIN, [
    "token",
    "create",
    "--login",
    "--config",
    controller.configPath,
    "--data-dir",
    controller.dataDir,
    "--tenant",
    tenant,
    "--role",
    role,
    "--url",
    controller.endpoint,
  ], { HOME: controller.dataDir });
  assert.equal(out.code, 0, out.stderr);
  assert.match(out.stderr, /One-time login link for cli:readonly/);
  return out.stdout.trim();
}

async function signInWithToken(context: BrowserContext, token: string): Promise<Page> {
  const page = await context.newPage();
  await page.goto("/");
  assert.match(page.url(), /\/console\/login/);
  await page.getByLabel("Operator token").fill(token);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(/\/console\/hosts/);
  return page;
}

/** POST forms (changes) inside the page's main area: a readonly page must have none. */
async function changeControls(page: Page): Promise<number> {
  return await page.locator("main form[method=post], main [hx-post], main form[data-exec]").count();
}

Deno.test(
  `[${TEST_DB_KIND}] the web console: add a host, see it connect live, run a command, tag and revoke it; readonly sees no controls`,
  opts,
  async (t) => {
    // An external provider whose OIDC login (code + PKCE, a public client) the console offers.
    const idp = new FakeIdp();
    const idpSigningKey = await idpKey("ES256");
    idp.keys = [idpSigningKey];
    idp.oidc = {
      issuer: "https://sso.example.test/realms/aegis",
      clientId: "aegis-console",
      key: idpSigningKey,
      audience: "aegis-console",
      identity: { sub: "frank@sso", tenant_id: "team-a", aegis_role: "operator", tenants: [] },
    };
    const controller = await startControllerProcess({
      edge: "heartbeat_interval_secs: 5",
      auth: [
        "issuers:",
        `  - issuer: "${idp.oidc.issuer}"`,
        '    audience: "aegis-console"',
        `    jwks_url: "${idp.jwksUrl}"`,
        "    algorithms: [ES256]",
        "    oidc:",
        `      authorization_endpoint: "${idp.authorizationEndpoint}"`,
        `      token_endpoint: "${idp.tokenEndpoint}"`,
        '      client_id: "aegis-console"',
        "      display_name: Example SSO",
      ].join("\n"),
    });
    const host = await makeHost();
    let browser: Browser | undefined;
    try {
      browser = await launchBrowser();
      const admin = await browser.newContext({ baseURL: controller.endpoint });
      const adminToken = await controller.operatorToken("team-a", "admin", ["team-b"]);
      const problems: string[] = [];

      let hostsPage!: Page;
      await t.step(
        "sign in with an operator token; the empty list says how to add a host",
        async () => {
          hostsPage = await signInWithToken(admin, adminToken);
          problems.push(...collectPageProblems(hostsPage));
          await hostsPage.getByText("No hosts yet").waitFor();
          await shot(hostsPage, "01-hosts-empty");
        },
      );

      let nodeId = "";
      await t.step(
        "Add Edge Host: tenant, name, Issue Token → command, one-liners, QR, countdown",
        async () => {
          const page = await admin.newPage();
          problems.push(...collectPageProblems(page));
          await page.goto("/console/hosts/new");
          await page.getByLabel("Tenant").selectOption("team-a");
          await page.getByLabel("Name", { exact: false }).first().fill("web-1");
          await page.getByRole("button", { name: "Issue Token" }).click();
          const command = (await page.locator("pre.command").first().textContent())!.trim();
          assert.match(command, /^aegis edge enroll \S+$/);
          assert.match((await page.locator(".countdown").first().textContent())!, /^1[45]:\d\d$/);
          assert.equal(await page.locator(".qr svg").count(), 1);
          await shot(page, "02-add-host-token");

          // The command as the page shows it, run on a real host.
          const token = command.split(" ").at(-1)!;
          const enrolled = await host.aegis([
            "edge",
            "enroll",
            token,
            "--non-interactive",
            "--no-service",
            "--local-tools",
            "shell",
          ]);
          assert.equal(enrolled.code, 0, enrolled.stderr);
          nodeId = enrolled.stdout.match(/Attested as node (n-[0-9a-f]+)/)![1];

          // The list, open before the host connects, must change by itself: a marker set in the
          // page's window survives only if the page is never reloaded.
          await hostsPage.evaluate(() => Object.assign(globalThis, { __notReloaded: true }));
          const daemon = host.startDaemon();
          const connectedAt = await waitForConnected(controller, adminToken, nodeId);
          await hostsPage.locator(`tr[data-node-id="${nodeId}"] .badge.connected`).waitFor({
            timeout: 15_000,
          });
          const badgeMs = Date.now() - connectedAt;
          assert.equal(await hostsPage.evaluate(() => "__notReloaded" in globalThis), true);
          console.log(`daemon Connected → badge Connected in the open list: ${badgeMs} ms`);
          await page.getByText(/is Connected/).waitFor({ timeout: 15_000 });
          await shot(page, "03-add-host-connected");
          await shot(hostsPage, "04-hosts-connected");
          void daemon;
        },
      );

      let detail!: Page;
      await t.step("host detail: facts; run `echo hi` with live output; add a tag", async () => {
        detail = await admin.newPage();
        problems.push(...collectPageProblems(detail));
        await detail.goto("/console/hosts");
        await detail.getByRole("link", { name: "web-1" }).click();
        await detail.waitForURL(new RegExp(`/console/hosts/${nodeId}$`));
        await detail.getByText(/SHA256:/).first().waitFor();
        await detail.getByLabel("Command").fill("echo hi");
        await detail.getByRole("button", { name: "Run" }).click();
        await detail.locator("pre.output").getByText("hi").waitFor({ timeout: 15_000 });
        await detail.getByText(/exit 0/).first().waitFor({ timeout: 15_000 });
        await detail.getByLabel("New tag").fill("web");
        await detail.getByRole("button", { name: "Add tag" }).click();
        await detail.locator(".chip", { hasText: "web" }).first().waitFor();
        await shot(detail, "05-host-detail");
      });

      await t.step(
        "fleet: preview the target, start `echo` on it, follow it to its per-node result",
        async () => {
          const page = await admin.newPage();
          problems.push(...collectPageProblems(page));
          await page.goto("/console/fleet/new");
          await page.getByLabel("Tenant").selectOption("team-a");
          await page.getByLabel("Target").fill("tags=AnyOf(web)");
          await page.getByLabel("Command", { exact: true }).fill("echo fleet");
          await page.getByRole("button", { name: "Preview hosts" }).click();
          await page.locator("#preview").getByText("web-1").waitFor();
          await shot(page, "06-fleet-preview");
          await page.getByRole("button", { name: "Start", exact: true }).click();
          await page.waitForURL(/\/console\/fleet\/[^/]+$/);
          await page.locator(".badge.done").first().waitFor({ timeout: 30_000 });
          await page.getByText(nodeId).first().waitFor();
          await page.locator(".badge.ok").first().waitFor();
          await shot(page, "07-fleet-operation");
          await page.goto("/console/fleet");
          await page.locator(".badge.done").first().waitFor();
          await page.close();
        },
      );
      await t.step(
        "a change without the session's CSRF token, or from another site, is refused",
        async () => {
          const status = await detail.evaluate(async (id) => {
            const response = await fetch(`/console/hosts/${id}/tags`, {
              method: "POST",
              headers: { "content-type": "application/x-www-form-urlencoded" },
              body: "tag=forged",
            });
            return response.status;
          }, nodeId);
          assert.equal(status, 403);
          // Another site's page auto-submitting a form to the console: the session cookie is
          // SameSite=Strict, so the request arrives without it and changes nothing.
          const evil = Deno.serve(
            { hostname: "127.0.0.1", port: 0, onListen() {} },
            () =>
              new Response(
                `<form id="f" method="post" action="${controller.endpoint}/console/hosts/${nodeId}/revoke"></form>
             <script>document.getElementById("f").submit()</script>`,
                { headers: { "content-type": "text/html" } },
              ),
          );
          try {
            const page = await admin.newPage();
            await page.goto(`http://localhost:${evil.addr.port}/`);
            await page.waitForLoadState("networkidle");
            await page.close();
          } finally {
            await evil.shutdown();
          }
          const view =
            await (await controller.api(`/v1/edge/hosts/${nodeId}`, { token: adminToken }))
              .json();
          assert.equal(view.status, "Connected");
          assert.deepEqual(view.tags, ["web"]);
        },
      );

      await t.step(
        "readonly, signed in by a one-time link: no controls anywhere, and the server refuses",
        async () => {
          const link = await loginLink(controller, "team-a", "readonly");
          const reader = await browser!.newContext({ baseURL: controller.endpoint });
          const page = await reader.newPage();
          problems.push(...collectPageProblems(page));
          await page.goto(link);
          await page.getByText(/signs you in as/).waitFor();
          await page.getByRole("button", { name: "Sign in" }).click();
          await page.waitForURL(/\/console\/hosts/);
          await page.locator(`tr[data-node-id="${nodeId}"]`).waitFor();
          assert.equal(await changeControls(page), 0);
          await shot(page, "08-readonly-hosts");
          for (const path of [`/console/hosts/${nodeId}`, "/console/hosts/new", "/console/fleet"]) {
            await page.goto(path);
            assert.equal(await changeControls(page), 0, `${path} shows a control to readonly`);
          }
          await shot(page, "09-readonly-fleet");
          // The readonly session's own CSRF token does not make it a writer.
          // (Browser code as a string: it runs in the page, where `document` exists.)
          const refused = await page.evaluate(`(async (id) => {
          const csrf = document.querySelector('meta[name="csrf-token"]').getAttribute("content");
          const post = (path, body) => fetch(path, {
            method: "POST",
            headers: { "content-type": "application/x-www-form-urlencoded", "x-csrf-token": csrf },
            body,
          }).then((r) => r.status);
          return [
            await post("/console/hosts/" + id + "/tags", "tag=ro"),
            await post("/console/hosts/" + id + "/revoke", ""),
            await post("/console/hosts/new", "tenant_id=team-a&name=x"),
          ];
        })(${JSON.stringify(nodeId)})`);
          assert.deepEqual(refused, [403, 403, 403]);

          // The link worked once: a second browser gets a refusal.
          const again = await (await browser!.newContext({ baseURL: controller.endpoint }))
            .newPage();
          await again.goto(link);
          await again.getByText("this login link was already used").waitFor();
          await reader.close();
        },
      );

      await t.step("revoke: the confirmation names the host; the badge turns Revoked", async () => {
        await detail.goto(`/console/hosts/${nodeId}`);
        await detail.getByRole("link", { name: /Revoke/ }).click();
        await detail.getByText(/web-1/).first().waitFor();
        await shot(detail, "10-revoke-confirm");
        await detail.getByRole("button", { name: /Revoke/ }).click();
        await detail.locator(".badge.revoked").first().waitFor({ timeout: 15_000 });
        await hostsPage.locator(`tr[data-node-id="${nodeId}"] .badge.revoked`).waitFor({
          timeout: 15_000,
        });
        await shot(detail, "11-host-revoked");
      });

      await t.step(
        "OIDC: the provider's button signs in with the identity it vouches for",
        async () => {
          const sso = await browser!.newContext({ baseURL: controller.endpoint });
          const page = await sso.newPage();
          problems.push(...collectPageProblems(page));
          await page.goto("/console/login");
          await shot(page, "00-sign-in");
          await page.getByRole("link", { name: "Sign in with Example SSO" }).click();
          await page.waitForURL(/\/console\/hosts/);
          await page.getByText("frank@sso").waitFor();
          await page.locator(`tr[data-node-id="${nodeId}"]`).waitFor();
          await sso.close();
        },
      );

      await t.step(
        "keyboard: the skip link comes first, and a token is issued without a mouse",
        async () => {
          const page = await admin.newPage();
          await page.goto("/console/hosts/new");
          await page.keyboard.press("Tab");
          assert.equal(
            await page.evaluate<string>("document.activeElement.textContent"),
            "Skip to content",
          );
          // Tab on until the name field has the focus, type, and submit with Enter.
          for (let i = 0; i < 20; i++) {
            await page.keyboard.press("Tab");
            if (await page.evaluate<string>("document.activeElement.name") === "name") break;
          }
          assert.equal(await page.evaluate<string>("document.activeElement.name"), "name");
          await page.keyboard.type("kbd-1");
          await page.keyboard.press("Enter");
          await page.locator("pre.command").first().waitFor();
          // Every form control on the console's pages has a label.
          for (
            const path of [
              "/console/hosts",
              "/console/hosts/new",
              "/console/fleet/new",
              `/console/hosts/${nodeId}`,
            ]
          ) {
            await page.goto(path);
            const unlabelled = await page.evaluate<string[]>(
              `[...document.querySelectorAll("main input:not([type=hidden]), main select, main textarea")]
            .filter((el) => !el.labels?.length && !el.getAttribute("aria-label"))
            .map((el) => el.name || el.outerHTML.slice(0, 60))`,
            );
            assert.deepEqual(unlabelled, [], `${path}: controls without a label`);
          }
          await page.close();
        },
      );

      await t.step("phone width: pages fit the screen", async () => {
        const phone = await browser!.newContext({
          baseURL: controller.endpoint,
          viewport: { width: 390, height: 844 },
        });
        const page = await signInWithToken(phone, adminToken);
        for (const path of ["/console/hosts", `/console/hosts/${nodeId}`, "/console/hosts/new"]) {
          await page.goto(path);
          const overflow = await page.evaluate<number>(
            "document.documentElement.scrollWidth - window.innerWidth",
          );
          assert.ok(overflow <= 0, `${path} is ${overflow}px wider than a phone`);
        }
        await page.goto("/console/hosts");
        await shot(page, "12-phone-hosts");
        await phone.close();
      });

      assert.deepEqual(problems, [], "console errors or CSP violations on the pages");
    } finally {
      await browser?.close();
      await host.cleanup();
      await controller.stop();
      await idp.close();
    }
  },
);

/** When the controller first reports the node Connected (REST, polled every 50 ms). */
async function waitForConnected(
  controller: ControllerProcess,
  token: string,
  nodeId: string,
): Promise<number> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    const response = await controller.api(`/v1/edge/hosts/${nodeId}`, { token });
    const view = await response.json();
    if (view.status === "Connected") return Date.now();
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`${nodeId} never connected`);
}
