// Signing in and out: an operator token pasted into the form, or a one-time login link printed
// by `aegis-controller token create --login`. Opening a link only shows whom it signs in as; the
// link is spent by the button's POST, so a mail scanner or chat preview that fetches it spends
// nothing.
import type { Context, Hono } from "hono";
import { toAegisError } from "../../shared/errors.ts";
import type { ConsoleDeps } from "./deps.ts";
import {
  clearSessionCookie,
  type ConsoleEnv,
  requireSameOrigin,
  safeNext,
  sessionId,
  setSessionCookie,
} from "./session.ts";
import { ErrorBox, Page } from "./layout.tsx";

const MAX_FIELD = 16_384;

export function loginPages(app: Hono<ConsoleEnv>, deps: ConsoleDeps): void {
  app.get("/login", async (c) => {
    c.header("cache-control", "no-store");
    const link = c.req.query("link");
    const next = safeNext(c.req.query("next"));
    if (link) return c.html(await linkPage(deps, link.slice(0, MAX_FIELD)));
    const session = await deps.sessions.find(sessionId(c));
    if (session) return c.redirect(next, 303);
    return c.html(
      <Page title="Sign in" section="login">
        <TokenForm next={next} providers={deps.oidc?.providers} />
      </Page>,
    );
  });

  app.post("/login", async (c) => {
    requireSameOrigin(c);
    const form = await c.req.parseBody();
    const next = safeNext(String(form["next"] ?? ""));
    try {
      const session = await deps.sessions.signInWithToken(String(form["token"] ?? ""));
      setSessionCookie(c, session);
      return c.redirect(next, 303);
    } catch (error) {
      return loginFailed(c, error, <TokenForm next={next} />);
    }
  });

  app.post("/login/link", async (c) => {
    requireSameOrigin(c);
    const form = await c.req.parseBody();
    try {
      const session = await deps.sessions.signInWithLink(String(form["link"] ?? ""));
      setSessionCookie(c, session);
      return c.redirect("/console/", 303);
    } catch (error) {
      return loginFailed(c, error, <TokenForm next="/console/" />);
    }
  });
}

/** Sign-out is a change like any other: behind requireSession, so it needs the CSRF token. */
export function logoutRoute(app: Hono<ConsoleEnv>, deps: ConsoleDeps): void {
  app.post("/logout", async (c) => {
    await deps.sessions.signOut(sessionId(c));
    clearSessionCookie(c);
    return c.redirect("/console/login", 303);
  });
}

function loginFailed(c: Context<ConsoleEnv>, error: unknown, form: unknown) {
  const aegis = toAegisError(error);
  const status = aegis.code === "INTERNAL" ? 500 : 401;
  return c.html(
    <Page title="Sign in" section="login">
      <div class="login">
        <ErrorBox message={aegis.message} hint={aegis.hint} />
        {form}
      </div>
    </Page>,
    status,
  );
}

async function linkPage(deps: ConsoleDeps, link: string) {
  try {
    // Read, not spent: the POST below spends it.
    const claims = await deps.sessions.describeLink(link);
    return (
      <Page title="Sign in" section="login">
        <form class="card login" method="post" action="/console/login/link">
          <p>
            This one-time link signs you in as <strong>{claims.sub}</strong> with role{" "}
            <strong>{claims.aegis_role}</strong> on{" "}
            <strong>{[claims.tenant_id, ...claims.tenants].join(", ")}</strong>.
          </p>
          <input type="hidden" name="link" value={link} />
          <button type="submit">Sign in</button>
        </form>
      </Page>
    );
  } catch (error) {
    const aegis = toAegisError(error);
    return (
      <Page title="Sign in" section="login">
        <div class="login">
          <ErrorBox message={aegis.message} hint={aegis.hint} />
          <TokenForm next="/console/" />
        </div>
      </Page>
    );
  }
}

function TokenForm(
  props: { next: string; providers?: readonly { index: number; name: string }[] },
) {
  return (
    <form class="card login" method="post" action="/console/login">
      <label>
        Operator token
        <textarea name="token" required autocomplete="off" spellcheck={false} maxlength={MAX_FIELD}>
        </textarea>
      </label>
      <p class="muted">
        Paste an operator token (from <code>aegis-controller token create</code>{" "}
        or your identity provider), or open a one-time link from{" "}
        <code>aegis-controller token create --login</code>.
      </p>
      <input type="hidden" name="next" value={props.next} />
      <button type="submit">Sign in</button>
      {props.providers?.length
        ? (
          <ul>
            {props.providers.map((p) => (
              <li>
                <a href={`/console/login/oidc/${p.index}?next=${encodeURIComponent(props.next)}`}>
                  Sign in with {p.name}
                </a>
              </li>
            ))}
          </ul>
        )
        : null}
    </form>
  );
}
