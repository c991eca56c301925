// Hostname globs for trusted enrollment and token binding. The rules, kept small on purpose:
//   - compared case-insensitively; one trailing dot on either side is ignored ("a.example.com.");
//   - `*` matches any run of characters (possibly none) inside ONE label: it never crosses a dot,
//     so `*.web.example.com` matches `a.web.example.com` but not `web.example.com` or
//     `a.b.web.example.com`; `web-*.example.com` matches `web-01.example.com`;
//   - every other character is literal (no `?`, no classes, `**` is just two stars);
//   - a pattern is 1–253 characters of letters, digits, `-`, `_`, `.` and `*`, with no empty label.
// The hostname is the host's own claim; see trusted_enrollment.ts for the check that is real.
import { AegisError } from "../../shared/errors.ts";

const PATTERN_CHARS = /^[A-Za-z0-9_.*-]+$/;
export const MAX_PATTERN_LENGTH = 253;

export class HostnameGlob {
  readonly pattern: string;
  readonly #labels: string[];

  private constructor(pattern: string) {
    this.pattern = pattern;
    // Not a regex: `[^.]*` per star backtracks exponentially in the number of stars, and a
    // tenant's writer chooses the pattern while anyone attesting chooses the hostname (security
    // review of issue 11). Label by label with matchLabel() it is O(pattern × name) at worst.
    this.#labels = pattern.split(".");
  }

  /** Throws INVALID_ARGUMENT (or the given code) naming `where` for a pattern outside the rules. */
  static parse(
    text: string,
    where: string,
    code: "INVALID_ARGUMENT" | "CONFIG_INVALID" = "INVALID_ARGUMENT",
  ): HostnameGlob {
    const pattern = stripDot(text.trim()).toLowerCase();
    const bad = (why: string) =>
      new AegisError(code, `${where}: hostname pattern ${JSON.stringify(text)} ${why}`, {
        hint: "Use labels of letters, digits, - and _, with * standing for part of one label " +
          '(e.g. "*.web.example.com").',
      });
    if (pattern.length === 0 || pattern.length > MAX_PATTERN_LENGTH) {
      throw bad(`must be 1 to ${MAX_PATTERN_LENGTH} characters`);
    }
    if (!PATTERN_CHARS.test(pattern)) throw bad("has a character outside A-Z a-z 0-9 - _ . *");
    if (pattern.split(".").some((label) => label === "")) throw bad("has an empty label");
    return new HostnameGlob(pattern);
  }

  matches(hostname: string): boolean {
    const name = stripDot(hostname.trim());
    if (name.length === 0 || name.length > MAX_PATTERN_LENGTH) return false;
    // Only ASCII letters fold, as the `i` regex did: no non-ASCII letter becomes an ASCII one.
    const labels = name.replace(/[A-Z]/g, (c) => c.toLowerCase()).split(".");
    return labels.length === this.#labels.length &&
      labels.every((label, i) => matchLabel(this.#labels[i], label));
  }
}

/** `*` is any run of characters (possibly none); the rest literal. Greedy with one resume point. */
function matchLabel(pattern: string, label: string): boolean {
  let p = 0;
  let s = 0;
  let star = -1; // the last star seen in the pattern
  let resume = 0; // where in the label that star's run ends so far
  while (s < label.length) {
    if (p < pattern.length && pattern[p] === "*") {
      star = p++;
      resume = s;
    } else if (p < pattern.length && pattern[p] === label[s]) {
      p++;
      s++;
    } else if (star >= 0) {
      p = star + 1;
      s = ++resume;
    } else {
      return false;
    }
  }
  while (p < pattern.length && pattern[p] === "*") p++;
  return p === pattern.length;
}

function stripDot(text: string): string {
  return text.endsWith(".") ? text.slice(0, -1) : text;
}
