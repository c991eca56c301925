// The Homebrew formula a controller serves for its release: `ruby -c` accepts it, and evaluated
// against a small stub of the formula DSL on each platform it names exactly the manifest's URL
// and sha256, installs the binary as `aegis` and its `test do` block passes.
import assert from "node:assert/strict";
import { join } from "node:path";
import { startControllerProcess } from "../support/controller.ts";
import { ROOT } from "../support/processes.ts";
import { makeReleaseFixture } from "./release_fixture.ts";
import type { ReleaseArch, ReleaseOs } from "../../shared/release/manifest.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const DSL = join(ROOT, "tests", "installers", "formula_dsl.rb");

async function ruby(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out = await new Deno.Command("ruby", { args, stdout: "piped", stderr: "piped" }).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, out: text(out.stdout), err: text(out.stderr) };
}

Deno.test(
  "formula: served for the release, ruby -c clean, exact URLs and sha256 per platform",
  opts,
  async () => {
    const fixture = await makeReleaseFixture();
    const controller = await startControllerProcess({
      yaml: `bootstrap:\n  releases_dir: "${fixture.releasesDir}"`,
    });
    const work = await Deno.makeTempDir({ prefix: "aegis-formula-" });
    try {
      const url = `http://127.0.0.1:${controller.port}`;
      const response = await fetch(`${url}/releases/latest/aegis-cli.rb`);
      assert.equal(response.status, 200);
      const formula = join(work, "aegis-cli.rb");
      await Deno.writeTextFile(formula, await response.text());
      const syntax = await ruby(["-c", formula]);
      assert.equal(syntax.code, 0, syntax.err);
      assert.match(syntax.out, /Syntax OK/);

      const platforms: [ReleaseOs, ReleaseArch][] = [
        ["macos", "arm64"],
        ["macos", "x86_64"],
        ["linux", "arm64"],
        ["linux", "x86_64"],
      ];
      for (const [os, arch] of platforms) {
        const artifact = fixture.manifest.artifacts.find((a) => a.os === os && a.arch === arch)!;
        const stage = join(work, `${os}-${arch}-stage`);
        const prefix = join(work, `${os}-${arch}-prefix`);
        await Deno.mkdir(stage);
        await Deno.copyFile(
          join(fixture.releasesDir, fixture.version, artifact.file),
          join(stage, artifact.file),
        );
        const run = await ruby([DSL, formula, os, arch, stage, prefix]);
        assert.equal(run.code, 0, run.err);
        const seen = JSON.parse(run.out);
        // Versioned URLs: the formula keeps working after `latest` moves on.
        assert.deepEqual(seen.url, [`${url}/releases/${fixture.version}/${artifact.file}`]);
        assert.deepEqual(seen.sha256, [artifact.sha256]);
        assert.equal(seen.version, fixture.version);
        assert.ok((await Deno.stat(join(prefix, "bin", "aegis"))).isFile);
      }
    } finally {
      await controller.stop();
      await fixture.cleanup();
      await Deno.remove(work, { recursive: true });
    }
  },
);
