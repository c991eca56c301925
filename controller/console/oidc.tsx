// "Sign in with <provider>": the console's side of OIDC sign-in (controller/app/oidc_login.ts does
// the protocol). GET /login/oidc/:index sends the browser to the provider with a sealed cookie
// holding the sign-in's state, nonce and PKCE verifier; GET /login/oidc/callback turns the
// provider's answer into a console session. That cookie is SameSite=Lax, not Strict like the
// session's: the provider's redirect back is a cross-site top-level GET, which must carry it. It is
// scoped to /console/login/oidc and lives 10 minutes; the session cookie stays Strict.
//
// redirect_uri is this console's own origin as the browser addressed it (X-Forwarded-Proto/-Host
// from a proxy in front, else the request's scheme and Host) + /console/login/oidc/callback; the
// provider must have exactly that URL registered for the client, which is what keeps a forged Host
// from sending codes anywhere else.
import type { Context, Hono } from "hono";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import { toAegisError } from "../../shared/errors.ts";
import { OIDC_LOGIN_TTL_SECS, type OidcLogin } from "../app/oidc_login.ts";
import type { ConsoleDeps } from "./deps.ts";
import { CONSOLE_PATH, type ConsoleEnv, ownOrigin, safeNext, setSessionCookie } from "./session.ts";
import { ErrorBox, Page } from "./layout.tsx";

export const OIDC_COOKIE = "aegis_oidc";
export const OIDC_PATH = `${CONSOLE_PATH}/login/oidc`;
export const OIDC_CALLBACK = `${OIDC_PATH}/callback`;

/**
 * This console's callback URL as the browser reaches it: the request's own Host, or a trusted
 * proxy's X-Forwarded-Host/-Proto (session.ts ownOrigin), never those headers from anyone else.
 * The provider's list of registered redirect URIs is what finally pins it.
 */
export function redirectUri(c: Context): string {
  const { protocol, host } = ownOrigin(c);
  return `${protocol}//${host}${OIDC_CALLBACK}`;
}

export function oidcPages(app: Hono<ConsoleEnv>, deps: ConsoleDeps): void {
  const oidc = deps.oidc;
  if (!oidc || oidc.providers.length === 0) return;

  // Before /:index, which would otherwise take "callback" for an index.
  app.get("/login/oidc/callback", async (c) => {
    c.header("cache-control", "no-store");
    const cookie = getCookie(c, OIDC_COOKIE);
    // Spent or not, this attempt is over: the cookie goes either way.
    deleteCookie(c, OIDC_COOKIE, { path: OIDC_PATH, secure: ownOrigin(c).protocol === "https:" });
    const query = (name: string) => c.req.query(name)?.slice(0, 4096);
    try {
      const { session, next } = await oidc.finish(cookie, {
        code: query("code"),
        state: query("state"),
        error: query("error"),
        errorDescription: query("error_description"),
      });
      setSessionCookie(c, session);
      return c.redirect(safeNext(next), 303);
    } catch (error) {
      return failed(c, oidc, error);
    }
  });

  app.get("/login/oidc/:index", (c) => {
    c.header("cache-control", "no-store");
    const index = /^\d{1,3}$/.test(c.req.param("index")) ? Number(c.req.param("index")) : -1;
    try {
      const { url, cookie } = oidc.begin(
        index,
        redirectUri(c),
        safeNext(c.req.query("next")?.slice(0, 2048)),
      );
      setCookie(c, OIDC_COOKIE, cookie, {
        path: OIDC_PATH,
        httpOnly: true,
        sameSite: "Lax",
        secure: ownOrigin(c).protocol === "https:",
        maxAge: OIDC_LOGIN_TTL_SECS,
      });
      return c.redirect(url, 303);
    } catch (error) {
      return failed(c, oidc, error);
    }
  });
}

/** The sign-in page with what went wrong, and the ways to try again. */
function failed(c: Context<ConsoleEnv>, oidc: OidcLogin, error: unknown) {
  const aegis = toAegisError(error);
  if (aegis.code === "INTERNAL") throw error;
  const status = aegis.code === "NOT_FOUND" ? 404 : 401;
  return c.html(
    <Page title="Sign in" section="login">
      <div class="login">
        <ErrorBox message={aegis.message} hint={aegis.hint} />
        <div class="card">
          <ul>
            {oidc.providers.map((p) => (
              <li>
                <a href={`${OIDC_PATH}/${p.index}`}>Sign in with {p.name}</a>
              </li>
            ))}
            <li>
              <a href={`${CONSOLE_PATH}/login`}>Sign in with an operator token</a>
            </li>
          </ul>
        </div>
      </div>
    </Page>,
    status,
  );
}
