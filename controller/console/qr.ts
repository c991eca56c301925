// QR codes as inline SVG, drawn on the server from uqr's module matrix. uqr's own renderSVG draws
// one square per dark module: an enroll command (a ~700-character JWT) makes a version-20-odd
// code whose SVG runs to ~150 KB. Here each row's runs of dark modules become one rectangle of a
// single <path>, in module units, which keeps it a few KB. Nothing but presentation attributes:
// no style="" and no <style>, which the console's CSP (style-src 'self') would block.
import { encode } from "uqr";

/** The quiet zone the QR spec asks for around the code, in modules. */
export const QR_QUIET_ZONE = 4;

/** The SVG of a QR code of `text` (byte mode, error correction L: it is read off a screen). */
export function qrSvg(text: string): string {
  const { size, data } = encode(text, { ecc: "L", border: QR_QUIET_ZONE });
  return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${size} ${size}" ` +
    `shape-rendering="crispEdges" aria-hidden="true" focusable="false">` +
    `<rect width="${size}" height="${size}" fill="#fff"/>` +
    `<path fill="#000" d="${qrPath(data)}"/></svg>`;
}

/** One `M x y h n v 1 h -n z` per horizontal run of dark modules. */
export function qrPath(modules: readonly (readonly boolean[])[]): string {
  const parts: string[] = [];
  modules.forEach((row, y) => {
    let x = 0;
    while (x < row.length) {
      if (!row[x]) {
        x++;
        continue;
      }
      const start = x;
      while (x < row.length && row[x]) x++;
      parts.push(`M${start} ${y}h${x - start}v1h${start - x}z`);
    }
  });
  return parts.join("");
}
