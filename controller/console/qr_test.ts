import assert from "node:assert/strict";
import { encode } from "uqr";
import { QR_QUIET_ZONE, qrPath, qrSvg } from "./qr.ts";

/** The dark modules a path of `M x y h n v1 h-n z` runs draws. */
function cellsOf(d: string): Set<string> {
  const cells = new Set<string>();
  for (const m of d.matchAll(/M(\d+) (\d+)h(\d+)v1h-\d+z/g)) {
    const [x, y, n] = [Number(m[1]), Number(m[2]), Number(m[3])];
    for (let i = 0; i < n; i++) cells.add(`${x + i},${y}`);
  }
  return cells;
}

Deno.test("qrPath draws exactly the dark modules, one run at a time", () => {
  const modules = [
    [true, true, false, true],
    [false, false, false, false],
    [true, false, true, true],
  ];
  assert.equal(qrPath(modules), "M0 0h2v1h-2zM3 0h1v1h-1zM0 2h1v1h-1zM2 2h2v1h-2z");
});

Deno.test("qrSvg of an enroll command: the code uqr encodes, as an SVG the console CSP allows", () => {
  const command = `aegis edge enroll ${"eyJhbGciOiJFZERTQSJ9".repeat(30)}.sig`;
  const svg = qrSvg(command);
  assert.doesNotMatch(svg, /style/i);
  assert.doesNotMatch(svg, /<script/i);
  const { size, data } = encode(command, { ecc: "L", border: QR_QUIET_ZONE });
  assert.match(
    svg,
    new RegExp(`^<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${size} ${size}"`),
  );
  const expected = new Set<string>();
  data.forEach((row, y) => row.forEach((dark, x) => dark && expected.add(`${x},${y}`)));
  const d = svg.match(/<path fill="#000" d="([^"]+)"/)![1];
  assert.deepEqual(cellsOf(d), expected);
  // The quiet zone is light: no module drawn within it.
  for (const cell of expected) {
    const [x, y] = cell.split(",").map(Number);
    assert.ok(x >= QR_QUIET_ZONE && y >= QR_QUIET_ZONE && x < size - QR_QUIET_ZONE);
  }
  // Runs keep it small: well under what a square per module would take.
  assert.ok(svg.length < expected.size * 10, `${svg.length} bytes for ${expected.size} modules`);
});
