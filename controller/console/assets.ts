// The console's static assets, embedded in the binary (text imports: nothing is read from disk or
// fetched from a CDN at run time). Each is served under a name with its content hash, so a browser
// may cache it forever and a new release is fetched at once.
import { createHash } from "node:crypto";
import { gzipSync } from "node:zlib";
import htmx from "htmx.org/dist/htmx.min.js" with { type: "text" };
import css from "./assets/console.css" with { type: "text" };
import js from "./assets/console.js" with { type: "text" };

export interface Asset {
  path: string;
  body: string;
  /** The body gzipped once at start-up, for browsers that accept it (all do). */
  gzip: Uint8Array<ArrayBuffer>;
  type: string;
}

function asset(name: string, ext: string, body: string, type: string): Asset {
  const hash = createHash("sha256").update(body).digest("hex").slice(0, 12);
  const gzip = Uint8Array.from(gzipSync(body, { level: 9 }));
  return { path: `/console/assets/${name}-${hash}.${ext}`, body, gzip, type };
}

export const ASSETS = {
  htmx: asset("htmx", "js", htmx, "text/javascript; charset=utf-8"),
  css: asset("console", "css", css, "text/css; charset=utf-8"),
  js: asset("console", "js", js, "text/javascript; charset=utf-8"),
} as const;

export const ASSET_BY_PATH: ReadonlyMap<string, Asset> = new Map(
  Object.values(ASSETS).map((a) => [a.path, a]),
);
