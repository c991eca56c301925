// Fleet targets: which hosts an operation runs on, as the operator writes it in `--target`.
//
//   all
//   tags=AnyOf(web,db)        tags=AllOf(web,eu)
//   labels=region:eu          labels=region:eu,tier:web     (every pair must match)
//   n-7a3b2f01                n-1,n-2                       ids=n-1,n-2
//
// A hand-written scanner rather than a regex so a mistake is reported at its exact column, with
// the input echoed and a caret under the character that broke it.
import { AegisError } from "../../../shared/errors.ts";
import type { Queryable } from "../../store/db.ts";
import type { DaemonRecord } from "../daemons.ts";
import { isTagChar, MAX_TAG_LENGTH } from "../tags.ts";

export type Target =
  | { kind: "all" }
  | { kind: "tags"; mode: "any" | "all"; tags: string[] }
  | { kind: "labels"; match: Record<string, string> }
  | { kind: "ids"; ids: string[] };

export interface TargetHost {
  node_id: string;
  tags: string[];
  labels: Record<string, string>;
}

const MAX_NODE_ID_DIGITS = 32;
// Key characters follow the edge config's label keys; values are narrowed to what can be typed in
// a shell word without quoting, and they cannot contain the "," that separates pairs.
const MAX_LABEL_KEY_LENGTH = 63;
const MAX_LABEL_VALUE_LENGTH = 256;
const LABEL_KEY_CHAR = /^[A-Za-z0-9_.\/-]$/;
const LABEL_VALUE_CHAR = /^[A-Za-z0-9_.:\/@+-]$/;
const HEX_DIGIT = /^[0-9a-f]$/;
const WORD_CHAR = /^[A-Za-z0-9_]$/;
const LETTER = /^[A-Za-z]$/;

export const TARGET_FORMS =
  "Targets: all | tags=AnyOf(a,b) | tags=AllOf(a,b) | labels=key:value[,key:value…] | " +
  "n-<hex>[,n-<hex>…] | ids=n-<hex>[,n-<hex>…]";

/** Parses `--target`; a mistake is AegisError INVALID_ARGUMENT pointing at its column. */
export function parseTarget(text: string): Target {
  const scanner: Scanner = new Scanner(text);
  scanner.skipSpace();
  let target: Target;
  if (scanner.at("n-")) {
    target = { kind: "ids", ids: unique(scanner.list(() => scanner.nodeId(), "end")) };
  } else {
    const start = scanner.pos;
    const word = scanner.take((ch) => LETTER.test(ch));
    switch (word) {
      case "all":
        target = { kind: "all" };
        break;
      case "tags":
        scanner.expect("=");
        target = scanner.tagsBody();
        break;
      case "labels":
        scanner.expect("=");
        target = { kind: "labels", match: scanner.labels() };
        break;
      case "ids":
        scanner.expect("=");
        target = { kind: "ids", ids: unique(scanner.list(() => scanner.nodeId(), "end")) };
        break;
      default:
        scanner.fail(`expected "all", "tags=", "labels=", "ids=" or a node id (n-…)`, start);
    }
  }
  scanner.skipSpace();
  if (!scanner.eof()) {
    scanner.fail(target.kind === "ids" ? `expected "," or end of input` : "expected end of input");
  }
  return target;
}

/** The canonical spelling: parseTarget(describeTarget(t)) gives t back. */
export function describeTarget(target: Target): string {
  switch (target.kind) {
    case "all":
      return "all";
    case "tags":
      return `tags=${target.mode === "any" ? "AnyOf" : "AllOf"}(${unique(target.tags).join(",")})`;
    case "labels":
      return "labels=" + Object.keys(target.match).sort()
        .map((key) => `${key}:${target.match[key]}`).join(",");
    case "ids":
      return unique(target.ids).join(",");
  }
}

/** The in-memory twin of resolveTarget's SQL, for hosts already at hand. */
export function matches(target: Target, host: TargetHost): boolean {
  switch (target.kind) {
    case "all":
      return true;
    case "tags":
      return target.mode === "any"
        ? target.tags.some((tag) => host.tags.includes(tag))
        : target.tags.every((tag) => host.tags.includes(tag));
    case "labels":
      return Object.entries(target.match).every(([key, value]) =>
        Object.hasOwn(host.labels, key) && host.labels[key] === value
      );
    case "ids":
      return target.ids.includes(host.node_id);
  }
}

/**
 * The non-revoked hosts of these tenants that the target selects, by name then node id.
 * Explicit ids must all exist in these tenants: a typo is NOT_FOUND rather than a smaller fleet.
 */
export async function resolveTarget(
  db: Queryable,
  tenantIds: string[],
  target: Target,
): Promise<DaemonRecord[]> {
  const filter = sqlFilter(target);
  // COLLATE "C": the same order on PostgreSQL (locale collation) and PGlite.
  const rows = await db.query<DaemonRecord>(
    `SELECT * FROM edge_daemons
      WHERE tenant_id = ANY($1::text[]) AND ${filter.sql}
        ${target.kind === "ids" ? "" : "AND status <> 'revoked'"}
      ORDER BY name COLLATE "C", node_id COLLATE "C"`,
    [tenantIds, ...filter.params],
  );
  if (target.kind !== "ids") return rows;
  // Revoked ids were fetched too, so they count as existing rather than as typos.
  const found = new Set(rows.map((row) => row.node_id));
  const missing = unique(target.ids).filter((id) => !found.has(id));
  if (missing.length === 1) throw new AegisError("NOT_FOUND", `no edge host ${missing[0]}`);
  if (missing.length > 1) {
    throw new AegisError("NOT_FOUND", `no edge hosts ${missing.join(", ")}`);
  }
  return rows.filter((row) => row.status !== "revoked");
}

/** The WHERE fragment for a target; its parameters are $2 onwards ($1 is the tenants). */
function sqlFilter(target: Target): { sql: string; params: unknown[] } {
  switch (target.kind) {
    case "all":
      return { sql: "true", params: [] };
    case "tags":
      return {
        sql: target.mode === "any" ? "tags && $2::text[]" : "tags @> $2::text[]",
        params: [target.tags],
      };
    case "labels":
      return { sql: "labels @> $2::jsonb", params: [JSON.stringify(target.match)] };
    case "ids":
      return { sql: "node_id = ANY($2::text[])", params: [target.ids] };
  }
}

function unique(items: readonly string[]): string[] {
  return [...new Set(items)].sort();
}

/** Walks the input by code point, so columns count characters as people see them. */
class Scanner {
  readonly chars: string[];
  pos = 0;

  constructor(readonly text: string) {
    this.chars = Array.from(text);
  }

  eof(): boolean {
    return this.pos >= this.chars.length;
  }

  peek(): string | undefined {
    return this.chars[this.pos];
  }

  at(prefix: string): boolean {
    return this.chars.slice(this.pos, this.pos + prefix.length).join("") === prefix;
  }

  skipSpace(): void {
    while (this.peek() === " " || this.peek() === "\t") this.pos++;
  }

  take(accept: (ch: string) => boolean): string {
    const start = this.pos;
    while (!this.eof() && accept(this.chars[this.pos])) this.pos++;
    return this.chars.slice(start, this.pos).join("");
  }

  expect(ch: string): void {
    if (this.peek() !== ch) this.fail(`expected "${ch}"`);
    this.pos++;
  }

  /** Items separated by commas (spaces allowed around them), ending before ")" or at the end. */
  list(item: () => string, close: ")" | "end"): string[] {
    const items = [item()];
    for (;;) {
      this.skipSpace();
      if (this.peek() === ",") {
        this.pos++;
        this.skipSpace();
        items.push(item());
      } else if (close === ")" ? this.peek() === ")" : this.eof()) {
        return items;
      } else {
        this.fail(close === ")" ? `expected ")" or ","` : `expected "," or end of input`);
      }
    }
  }

  tagsBody(): Target {
    const start = this.pos;
    const word = this.take((ch) => LETTER.test(ch));
    if (word !== "AnyOf" && word !== "AllOf") this.fail(`expected "AnyOf" or "AllOf"`, start);
    this.expect("(");
    this.skipSpace();
    const tags = this.list(() => this.tag(), ")");
    this.expect(")");
    return { kind: "tags", mode: word === "AnyOf" ? "any" : "all", tags: unique(tags) };
  }

  tag(): string {
    const start = this.pos;
    const tag = this.take(isTagChar);
    if (!tag) this.fail("expected a tag (letters, digits or _ . : -)");
    if (tag.length > MAX_TAG_LENGTH) {
      this.fail(`a tag has at most ${MAX_TAG_LENGTH} characters`, start + MAX_TAG_LENGTH);
    }
    return tag;
  }

  nodeId(): string {
    if (!this.at("n-")) this.fail("expected a node id (n-<hex>)");
    this.pos += 2;
    const start = this.pos;
    const digits = this.take((ch) => HEX_DIGIT.test(ch));
    if (digits.length > MAX_NODE_ID_DIGITS) {
      this.fail(
        `a node id has at most ${MAX_NODE_ID_DIGITS} hex digits`,
        start + MAX_NODE_ID_DIGITS,
      );
    }
    // "n-7aG" is a mistyped id, not an id followed by garbage: say so at the "G".
    if (!digits || WORD_CHAR.test(this.peek() ?? "")) {
      this.fail("expected a lowercase hex digit (node ids are n-<hex>)");
    }
    return `n-${digits}`;
  }

  labels(): Record<string, string> {
    const pairs: [string, string][] = [];
    this.list(() => {
      const start = this.pos;
      const key = this.bounded(LABEL_KEY_CHAR, MAX_LABEL_KEY_LENGTH, "label key");
      if (pairs.some(([k]) => k === key)) this.fail(`label "${key}" is given twice`, start);
      this.expect(":");
      pairs.push([key, this.bounded(LABEL_VALUE_CHAR, MAX_LABEL_VALUE_LENGTH, "label value")]);
      return key;
    }, "end");
    // fromEntries defines own properties, so even a key like "__proto__" stays a plain label.
    return Object.fromEntries(pairs);
  }

  private bounded(chars: RegExp, max: number, what: string): string {
    const start = this.pos;
    const text = this.take((ch) => chars.test(ch));
    if (!text) this.fail(`expected a ${what}`);
    if (text.length > max) this.fail(`a ${what} has at most ${max} characters`, start + max);
    return text;
  }

  fail(message: string, at = this.pos): never {
    const end = at >= this.chars.length;
    // Control characters would break the echoed line (and the caret's alignment) apart.
    const shown = this.chars.map((ch) => /^\p{Cc}$/u.test(ch) ? "\uFFFD" : ch).join("");
    throw new AegisError(
      "INVALID_ARGUMENT",
      `bad --target at column ${at + 1}${end ? " (end of input)" : ""}: ${message}\n` +
        `  ${shown}\n` +
        `  ${" ".repeat(at)}^`,
      { hint: TARGET_FORMS, details: { target: this.text, column: String(at + 1) } },
    );
  }
}
