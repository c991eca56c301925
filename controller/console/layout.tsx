// The page frame every console page shares: head (assets, CSRF token, htmx settings that keep it
// within the CSP), the top bar with navigation, who is signed in, and sign-out.
import type { Child } from "hono/jsx";
import { raw } from "hono/html";
import { ASSETS } from "./assets.ts";
import type { Operator } from "../app/operators.ts";

// htmx without eval, script tags in swapped content or its own injected <style>: nothing the CSP
// would have to allow.
const HTMX_CONFIG = JSON.stringify({
  includeIndicatorStyles: false,
  allowEval: false,
  allowScriptTags: false,
  historyCacheSize: 0,
  selfRequestsOnly: true,
  // Refusals are shown, not dropped: htmx 2 swaps nothing for 4xx/5xx by default. The console's
  // error handler points them at #flash (HX-Retarget), so a failing refresh keeps refreshing.
  responseHandling: [
    { code: "204", swap: false },
    { code: "[23]..", swap: true },
    { code: "[45]..", swap: true, error: true },
  ],
});

export type Section = "hosts" | "add" | "fleet" | "login";

export function Page(props: {
  title: string;
  section: Section;
  operator?: Operator;
  csrf?: string;
  children: Child;
}) {
  const { operator, csrf } = props;
  const nav = (section: Section, href: string, label: string) => (
    <a href={href} aria-current={props.section === section ? "page" : undefined}>{label}</a>
  );
  return (
    <>
      {raw("<!DOCTYPE html>")}
      <html lang="en">
        <head>
          <meta charset="utf-8" />
          <meta name="viewport" content="width=device-width, initial-scale=1" />
          <meta name="htmx-config" content={HTMX_CONFIG} />
          {csrf ? <meta name="csrf-token" content={csrf} /> : null}
          <title>{props.title} · AEGIS Edge</title>
          <link rel="stylesheet" href={ASSETS.css.path} />
          {/* No favicon request (nor its 404) on every page. */}
          <link rel="icon" href="data:," />
          <script src={ASSETS.htmx.path} defer></script>
          <script src={ASSETS.js.path} defer></script>
        </head>
        <body hx-headers={csrf ? JSON.stringify({ "x-csrf-token": csrf }) : undefined}>
          <a class="skip" href="#main">Skip to content</a>
          <header class="top">
            <a class="brand" href="/console/">AEGIS Edge</a>
            {operator
              ? (
                <nav aria-label="Main">
                  {nav("hosts", "/console/hosts", "Edge Hosts")}
                  {nav("add", "/console/hosts/new", "Add Edge Host")}
                  {nav("fleet", "/console/fleet", "Fleet operations")}
                </nav>
              )
              : null}
            {operator
              ? (
                <div class="who">
                  <span>
                    {operator.sub} · <span class="chip">{operator.aegis_role}</span>
                  </span>
                  <form method="post" action="/console/logout">
                    <input type="hidden" name="_csrf" value={csrf} />
                    <button type="submit">Sign out</button>
                  </form>
                </div>
              )
              : null}
          </header>
          <main id="main">
            <h1>{props.title}</h1>
            <div id="flash" aria-live="assertive"></div>
            {props.children}
          </main>
        </body>
      </html>
    </>
  );
}

export function StatusBadge(props: { status: string }) {
  const key = props.status.toLowerCase();
  return <span class={`badge ${key}`}>{props.status}</span>;
}

export function ErrorBox(props: { message: string; hint?: string }) {
  return (
    <div class="error" role="alert">
      {props.message}
      {props.hint ? <div>{props.hint}</div> : null}
    </div>
  );
}
