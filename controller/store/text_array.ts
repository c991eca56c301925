// text[] in PostgreSQL's text format, for the postgres.js adapter. postgres.js's own array parser
// reads an unquoted NULL element as the string "NULL" (PGlite gives null), so text[] gets this
// parser and the matching serializer instead.

export type TextArray = (string | null | TextArray)[];

/** Parses `{a,"b,c",NULL,{d}}` (optionally prefixed with bounds like `[0:1]=`). */
export function parseTextArray(literal: string): TextArray {
  let i = literal.startsWith("[") ? literal.indexOf("=") + 1 : 0;
  const fail = (): never => {
    throw new Error(`malformed text[] literal at offset ${i}: ${literal.slice(0, 80)}`);
  };

  const parseLevel = (): TextArray => {
    if (literal[i] !== "{") fail();
    i++;
    const out: TextArray = [];
    if (literal[i] === "}") {
      i++;
      return out;
    }
    while (i < literal.length) {
      const c = literal[i];
      if (c === "{") out.push(parseLevel());
      else if (c === '"') out.push(quoted());
      else {
        const start = i;
        while (i < literal.length && literal[i] !== "," && literal[i] !== "}") i++;
        const raw = literal.slice(start, i);
        // Only the unquoted word is SQL NULL; a quoted "NULL" is the four-letter string.
        out.push(raw.toUpperCase() === "NULL" ? null : raw);
      }
      if (literal[i] === ",") i++;
      else if (literal[i] === "}") {
        i++;
        return out;
      } else fail();
    }
    return fail();
  };

  const quoted = (): string => {
    i++;
    let s = "";
    while (i < literal.length && literal[i] !== '"') {
      if (literal[i] === "\\") i++;
      s += literal[i++];
    }
    if (literal[i] !== '"') fail();
    i++;
    return s;
  };

  const result = parseLevel();
  if (i !== literal.length) fail();
  return result;
}

/** Serializes a (possibly nested) JS array; every element is quoted so nothing is misread. */
export function serializeTextArray(value: unknown): string {
  // A caller may already hold a literal; pass it through as PGlite does.
  if (typeof value === "string") return value;
  if (!Array.isArray(value)) throw new TypeError("text[] parameter must be an array of strings");
  const items = value.map((x) => {
    if (x === null) return "NULL";
    if (x === undefined) {
      throw new TypeError("text[] parameter has an undefined element (use null)");
    }
    if (Array.isArray(x)) return serializeTextArray(x);
    return `"${String(x).replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
  });
  return `{${items.join(",")}}`;
}
