import assert from "node:assert/strict";
import { join } from "node:path";
import { edgePaths } from "../state/paths.ts";
import { currentVersion, updateLayout, versionBinary } from "./layout.ts";
import { pendingMarker, readMarker, writeMarker } from "./marker.ts";
import { PendingUpdateGuard } from "./pending_guard.ts";
import { switchTo } from "./switch.ts";
import { AegisError } from "../../shared/errors.ts";

async function switched(deadlineMs: number) {
  const home = await Deno.makeTempDir({ prefix: "aegis-guard-" });
  const paths = edgePaths(home);
  const layout = updateLayout(paths);
  for (const version of ["1.0.0", "1.1.0"]) {
    await Deno.mkdir(join(layout.versions, version), { recursive: true });
    await Deno.writeTextFile(versionBinary(layout, version), version);
  }
  await writeMarker(layout.marker, pendingMarker("1.0.0", "1.1.0", deadlineMs));
  await switchTo(layout, "1.1.0");
  return { home, paths, layout };
}

Deno.test("PendingUpdateGuard.arm() rolls back at once when the deadline has passed", async () => {
  const { home, paths, layout } = await switched(-1);
  try {
    const lines: string[] = [];
    const guard = await PendingUpdateGuard.arm(paths, "1.1.0", (l) => lines.push(l), () => "boom");
    assert.ok(guard?.signal.aborted);
    assert.equal(guard?.rolledBack?.code, "UPDATE_ROLLED_BACK");
    assert.equal(await currentVersion(layout), "1.0.0");
    const marker = await readMarker(layout.marker);
    assert.equal(marker?.state, "rolled_back");
    assert.match(marker?.reason ?? "", /did not reach Connected.*last error: boom/);
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});

Deno.test("PendingUpdateGuard: Connected before the deadline confirms and clears the marker", async () => {
  const { home, paths, layout } = await switched(60_000);
  try {
    const guard = await PendingUpdateGuard.arm(paths, "1.1.0", () => {});
    assert.ok(guard && !guard.signal.aborted);
    await guard.connected();
    guard.dispose();
    assert.equal(await readMarker(layout.marker), undefined);
    assert.equal(await currentVersion(layout), "1.1.0");
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});

Deno.test("PendingUpdateGuard: the deadline passing while running rolls back and aborts", async () => {
  const { home, paths, layout } = await switched(300);
  try {
    const guard = await PendingUpdateGuard.arm(paths, "1.1.0", () => {});
    await new Promise((resolve) => guard!.signal.addEventListener("abort", resolve));
    assert.equal(await currentVersion(layout), "1.0.0");
    // A late Connected changes nothing: the rollback stands.
    await guard!.connected();
    assert.equal((await readMarker(layout.marker))?.state, "rolled_back");
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});

Deno.test("PendingUpdateGuard.arm() leaves other versions' daemons alone", async () => {
  const { home, paths, layout } = await switched(-1);
  try {
    // The previous version, started again after a rollback, is not on probation.
    assert.equal(await PendingUpdateGuard.arm(paths, "1.0.0", () => {}), undefined);
    assert.equal(await currentVersion(layout), "1.1.0");
    assert.equal((await readMarker(layout.marker))?.state, "pending");
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});

Deno.test("PendingUpdateGuard: an update cut off before the restart is judged at the first start", async () => {
  const { home, paths, layout } = await switched(60_000);
  try {
    // The switch happened two minutes ago, but no daemon of the new version has run since.
    const marker = (await readMarker(layout.marker))!;
    const ago = (ms: number) => new Date(Date.now() - ms).toISOString();
    await writeMarker(layout.marker, {
      ...marker,
      started_at: ago(120_000),
      deadline: ago(60_000),
    });
    const guard = await PendingUpdateGuard.arm(paths, "1.1.0", () => {});
    assert.ok(guard && !guard.signal.aborted);
    assert.ok((await readMarker(layout.marker))?.first_start_at);
    guard.dispose();
    // Its next start (after a crash) keeps the first start's window, which has not run out.
    const again = await PendingUpdateGuard.arm(paths, "1.1.0", () => {});
    assert.ok(again && !again.signal.aborted);
    again.dispose();
    assert.equal(await currentVersion(layout), "1.1.0");
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});

Deno.test("PendingUpdateGuard: when switching back fails it stays up instead of exec-looping", async () => {
  const { home, paths, layout } = await switched(-1);
  try {
    // The previous version's binary is gone: a rollback cannot point `current` anywhere.
    await Deno.remove(join(layout.versions, "1.0.0"), { recursive: true });
    const lines: string[] = [];
    const guard = await PendingUpdateGuard.arm(paths, "1.1.0", (l) => lines.push(l));
    // Exiting would only restart this same binary, which would fail the same way, forever.
    assert.ok(guard && !guard.signal.aborted);
    assert.equal(guard.rolledBack, undefined);
    assert.equal(await currentVersion(layout), "1.1.0");
    assert.match(lines.join("\n"), /switching back to 1\.0\.0 failed.*staying on 1\.1\.0/);
    // A Connected later confirms the version that runs.
    await guard.connected();
    assert.equal(await readMarker(layout.marker), undefined);
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});

Deno.test("PendingUpdateGuard.abandon(): a daemon on probation that ends in error goes back first", async () => {
  const { home, paths, layout } = await switched(60_000);
  try {
    // Refused (exit 77: systemd would not restart it) long before its deadline.
    const refused = new AegisError("NODE_TOKEN_INVALID", "the controller refused the token");
    const lines: string[] = [];
    const error = await PendingUpdateGuard.abandon(paths, "1.1.0", refused, (l) => lines.push(l));
    assert.ok(error instanceof AegisError);
    assert.equal(error.code, "UPDATE_ROLLED_BACK");
    assert.equal(error.exitCode, 75);
    assert.equal(await currentVersion(layout), "1.0.0");
    const marker = await readMarker(layout.marker);
    assert.equal(marker?.state, "rolled_back");
    assert.match(
      marker?.reason ?? "",
      /stopped before it reached Connected: the controller refused/,
    );
    // The previous version ending in error is its own business: nothing changes.
    const again = new AegisError("NODE_REVOKED", "revoked");
    assert.equal(await PendingUpdateGuard.abandon(paths, "1.0.0", again, () => {}), again);
    assert.equal(await currentVersion(layout), "1.0.0");
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});
