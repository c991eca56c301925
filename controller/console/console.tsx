// The web console, on the controller's own port under /console: server-rendered pages (hono/jsx)
// with htmx and one small script, every asset embedded. Thin: each page calls the same services
// in controller/app that REST calls, with the signed-in session's operator claims.
import { Hono } from "hono";
import { HTTPException } from "hono/http-exception";
import { compress } from "hono/compress";
import { shownError } from "../api/errors.ts";
import { ASSET_BY_PATH } from "./assets.ts";
import type { ConsoleDeps } from "./deps.ts";
import { type ConsoleEnv, requireSession } from "./session.ts";
import { loginPages, logoutRoute } from "./login.tsx";
import { hostsPages } from "./hosts.tsx";
import { hostDetailPages } from "./host_detail.tsx";
import { addHostPages } from "./add_host.tsx";
import { fleetPages } from "./fleet.tsx";
import { oidcPages } from "./oidc.tsx";
import { ErrorBox, Page } from "./layout.tsx";

/** Nothing but this origin's own scripts, styles and requests; no framing, no inline script. */
export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join("; ");

export function createConsole(deps: ConsoleDeps): Hono<ConsoleEnv> {
  const app = new Hono<ConsoleEnv>();
  app.use("*", async (c, next) => {
    // Forwarding headers count only from a configured trusted proxy (session.ts).
    c.set(
      "viaTrustedProxy",
      deps.viaTrustedProxy?.(peerOf(c.env)) ?? false,
    );
    await next();
    c.header("content-security-policy", CONSOLE_CSP);
    c.header("x-content-type-options", "nosniff");
    // same-origin, not no-referrer: with no-referrer Chrome sends `Origin: null` on form posts,
    // which the same-origin check must refuse; nothing is ever sent to another site either way.
    c.header("referrer-policy", "same-origin");
    c.header("x-frame-options", "DENY");
    c.header("cross-origin-opener-policy", "same-origin");
  });
  // Pages only (a 50-host page is 36 KB, 3 KB gzipped); a command's live output
  // (application/x-ndjson) and the pre-gzipped assets pass through untouched.
  app.use("*", compress({ encoding: "gzip", contentTypeFilter: /^text\/html/ }));
  app.onError((error, c) => {
    const aegis = shownError(
      error instanceof HTTPException ? error.cause ?? error : error,
      c,
      deps.log,
    );
    const status = aegis.httpStatus as 400 | 401 | 403 | 404 | 409 | 429 | 500 | 503;
    if (
      (c.req.header("accept") ?? "").includes("application/json") ||
      c.req.header("x-csrf-token") && !c.req.header("hx-request")
    ) {
      return c.json({ error: aegis.toJSON() }, status);
    }
    if (c.req.header("hx-request")) {
      // Into the page's #flash, not the request's target: a refusal must not replace the table
      // or form it came from (a live refresh would stop refreshing).
      c.header("HX-Retarget", "#flash");
      c.header("HX-Reswap", "innerHTML");
      return c.html(<ErrorBox message={aegis.message} hint={aegis.hint} />, status);
    }
    return c.html(
      <Page title="Something went wrong" section="hosts">
        <ErrorBox message={aegis.message} hint={aegis.hint} />
        <p>
          <a href="/console/">Back to the console</a>
        </p>
      </Page>,
      status,
    );
  });

  app.get("/assets/:file", (c) => {
    const asset = ASSET_BY_PATH.get(c.req.path);
    if (!asset) return c.text("no such asset", 404);
    const headers = {
      "content-type": asset.type,
      "cache-control": "public, max-age=31536000, immutable",
      vary: "Accept-Encoding",
    };
    if (/\bgzip\b/.test(c.req.header("accept-encoding") ?? "")) {
      return c.body(asset.gzip, 200, { ...headers, "content-encoding": "gzip" });
    }
    return c.body(asset.body, 200, headers);
  });

  loginPages(app, deps);
  oidcPages(app, deps);

  const signedIn = new Hono<ConsoleEnv>();
  signedIn.use("*", requireSession(deps.sessions));
  signedIn.get("/", (c) => c.redirect("/console/hosts", 303));
  logoutRoute(signedIn, deps);
  // /hosts/new before /hosts/:nodeId.
  addHostPages(signedIn, deps);
  hostsPages(signedIn, deps);
  hostDetailPages(signedIn, deps);
  fleetPages(signedIn, deps);
  app.route("/", signedIn);
  return app;
}

/** The TCP peer of a request served by @hono/node-server (its env carries the Node request). */
function peerOf(env: unknown): string | undefined {
  return (env as { incoming?: { socket?: { remoteAddress?: string } } } | undefined)?.incoming
    ?.socket?.remoteAddress;
}
