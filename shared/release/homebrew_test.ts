import assert from "node:assert/strict";
import { AegisError } from "../errors.ts";
import { FORMULA_FILE, renderFormula, tapLayout } from "./homebrew.ts";
import type { ReleaseArtifact, ReleaseManifest } from "./manifest.ts";

const artifact = (os: ReleaseArtifact["os"], arch: ReleaseArtifact["arch"]): ReleaseArtifact => ({
  name: "aegis",
  os,
  arch,
  file: `aegis-1.2.3-${os}-${arch}${os === "windows" ? ".exe" : ""}`,
  sha256: (os + arch).padEnd(64, "0").replace(/[^0-9a-f]/g, "a"),
  size: 10,
});
const manifest = (artifacts: ReleaseArtifact[]): ReleaseManifest => ({
  schema: 1,
  version: "1.2.3",
  created_at: "2026-01-01T00:00:00.000Z",
  artifacts,
});

Deno.test("renderFormula() writes a block only for the platforms the release has", () => {
  const text = renderFormula(
    manifest([artifact("linux", "arm64"), artifact("windows", "x86_64")]),
    "https://ctl.example.com/releases/1.2.3/",
  );
  assert.match(
    text,
    /on_linux do\n {4}on_arm do\n {6}url "https:\/\/ctl\.example\.com\/releases\/1\.2\.3\/aegis-1\.2\.3-linux-arm64"/,
  );
  assert.doesNotMatch(text, /on_macos|on_intel|windows/);
  assert.match(text, /bin\.install binary => "aegis"/);
  assert.match(text, /shell_output\("#\{bin\}\/aegis --version"\)/);
});

Deno.test("renderFormula() refuses a release with nothing for macOS or Linux, and a bad URL", () => {
  assert.throws(
    () => renderFormula(manifest([artifact("windows", "x86_64")]), "https://x.example"),
    (e) => e instanceof AegisError && e.code === "INVALID_ARGUMENT",
  );
  assert.throws(
    () => renderFormula(manifest([artifact("linux", "arm64")]), "file:///tmp"),
    AegisError,
  );
});

Deno.test("renderFormula() escapes what Ruby would interpolate", () => {
  const text = renderFormula(manifest([artifact("macos", "arm64")]), "https://x.example/a#{b}");
  assert.ok(text.includes('url "https://x.example/a\\#{b}/aegis-1.2.3-macos-arm64"'));
});

Deno.test("tapLayout() is Formula/aegis-cli.rb plus a README naming the tap", () => {
  const files = tapLayout(manifest([artifact("macos", "x86_64")]), "https://x.example/r", "acme");
  assert.deepEqual(Object.keys(files).sort(), [`Formula/${FORMULA_FILE}`, "README.md"]);
  assert.match(files["README.md"], /brew tap acme\/aegis/);
  assert.match(files["README.md"], /brew install aegis-cli/);
});
