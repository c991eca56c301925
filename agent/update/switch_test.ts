import assert from "node:assert/strict";
import { join } from "node:path";
import { edgePaths } from "../state/paths.ts";
import { currentVersion, installedVersions, updateLayout, versionBinary } from "./layout.ts";
import { switchTo } from "./switch.ts";
import { pruneVersions } from "./prune.ts";

async function layoutWith(versions: string[]) {
  const home = await Deno.makeTempDir({ prefix: "aegis-switch-" });
  const layout = updateLayout(edgePaths(home), "linux");
  for (const version of versions) {
    await Deno.mkdir(join(layout.versions, version), { recursive: true });
    await Deno.writeTextFile(versionBinary(layout, version), `#!/bin/sh\necho ${version}\n`);
  }
  return { home, layout };
}

Deno.test("switchTo() points current at a version and replaces the link in one rename", async () => {
  const { home, layout } = await layoutWith(["1.0.0", "1.1.0"]);
  try {
    assert.equal(await currentVersion(layout), undefined);
    await switchTo(layout, "1.0.0");
    assert.equal(await currentVersion(layout), "1.0.0");
    assert.equal(await Deno.readLink(layout.current), join("versions", "1.0.0"));
    await switchTo(layout, "1.1.0");
    assert.equal(await currentVersion(layout), "1.1.0");
    assert.equal(await Deno.readTextFile(layout.bin), "#!/bin/sh\necho 1.1.0\n");
    // No temporary links are left beside it.
    const names = [];
    for await (const e of Deno.readDir(join(layout.current, ".."))) names.push(e.name);
    assert.deepEqual(names.filter((n) => n.startsWith(".current")), []);
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});

Deno.test("switchTo() refuses a version that is not installed and leaves current alone", async () => {
  const { home, layout } = await layoutWith(["1.0.0"]);
  try {
    await switchTo(layout, "1.0.0");
    await assert.rejects(() => switchTo(layout, "2.0.0"), Deno.errors.NotFound);
    await assert.rejects(() => switchTo(layout, "../../etc"), /not a release version/);
    assert.equal(await currentVersion(layout), "1.0.0");
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});

Deno.test("pruneVersions() keeps current and previous, deletes older ones and staging dirs", async () => {
  const { home, layout } = await layoutWith(["0.9.0", "1.0.0", "1.1.0"]);
  try {
    await Deno.mkdir(join(layout.versions, ".staging-x"));
    assert.deepEqual(await pruneVersions(layout, ["1.0.0", "1.1.0"]), ["0.9.0"]);
    assert.deepEqual(await installedVersions(layout), ["1.0.0", "1.1.0"]);
    const names = [];
    for await (const e of Deno.readDir(layout.versions)) names.push(e.name);
    assert.deepEqual(names.sort(), ["1.0.0", "1.1.0"]);
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});
