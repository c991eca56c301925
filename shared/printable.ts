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

/**
 * Text made fit to store and to show, whatever a caller or a host sent: broken UTF-16 (a
 * surrogate half, as a cut through an emoji leaves) repaired, control and format characters
 * (NUL, ESC, bidi overrides) replaced by U+FFFD, and cut to `max` code points with "…" marking
 * the cut. PostgreSQL refuses NUL and unpaired surrogates outright, and a batched write refused
 * for one row loses every row of the batch, so every free text field passes here first.
 */
export function storableText(value: unknown, max: number): string {
  const text = (typeof value === "string" ? value : String(value ?? ""))
    .toWellFormed()
    .replace(/[\p{Cc}\p{Cf}]/gu, "\uFFFD");
  const points = [...text];
  return points.length <= max ? text : `${points.slice(0, Math.max(0, max - 1)).join("")}…`;
}
