// `deno task build`: one self-contained `aegis` and `aegis-controller` per OS/arch in dist/.
// `deno compile` downloads the runtime for each target from the Deno CDN, so this needs
// internet; when that download fails, it says so instead of pretending.
import { fileURLToPath } from "node:url";
import { VERSION } from "../shared/version.ts";

const root = fileURLToPath(new URL("../", import.meta.url));
const TARGETS = [
  ["linux", "x86_64", "x86_64-unknown-linux-gnu"],
  ["linux", "arm64", "aarch64-unknown-linux-gnu"],
  ["macos", "x86_64", "x86_64-apple-darwin"],
  ["macos", "arm64", "aarch64-apple-darwin"],
  ["windows", "x86_64", "x86_64-pc-windows-msvc"],
  ["windows", "arm64", "aarch64-pc-windows-msvc"],
] as const;
const BINARIES = [["aegis", "agent/main.ts"], ["aegis-controller", "controller/main.ts"]] as const;

const only = Deno.args.find((a) => a.startsWith("--target="))?.slice("--target=".length);
let failed = 0;
for (const [os, arch, triple] of TARGETS) {
  if (only && only !== `${os}-${arch}`) continue;
  for (const [name, entry] of BINARIES) {
    const output = `dist/${name}-${VERSION}-${os}-${arch}${os === "windows" ? ".exe" : ""}`;
    const result = await new Deno.Command(Deno.execPath(), {
      args: ["compile", "-A", "--target", triple, "--output", output, entry],
      cwd: root,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(result.stderr);
    if (result.success) {
      console.log(`✔ ${output}`);
      continue;
    }
    failed++;
    if (/denort|dl\.deno\.land|download|error sending request|dns/i.test(stderr)) {
      console.error(`✖ ${output}: deno compile could not download the Deno runtime for ${triple}.`);
      console.error(
        "  Building needs internet access to the Deno CDN; run `deno task build` on a machine that has it.",
      );
    } else {
      console.error(`✖ ${output}:\n${stderr}`);
    }
  }
}
Deno.exit(failed ? 1 : 0);
