// Text a node or an anonymous caller declares about itself (hostname, os, labels, tool names) is
// shown on operators' terminals and pages. Control characters (ESC sequences, CR, NUL) and
// invisible format characters (bidi overrides, zero-width) could repaint a terminal or make one
// name pass for another, so such text is refused where it enters, not escaped wherever it is shown.
const UNPRINTABLE = /[\p{Cc}\p{Cf}]/u;

/** The first control or format character of `value`, as U+XXXX, or undefined when there is none. */
export function unprintable(value: string): string | undefined {
  const match = value.match(UNPRINTABLE);
  return match
    ? `U+${match[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, "0")}`
    : undefined;
}
