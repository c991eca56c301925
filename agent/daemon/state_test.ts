import assert from "node:assert/strict";
import {
  type DaemonState,
  DaemonStateFile,
  LAST_ERROR_MAX_CHARS,
  nextState,
  readDaemonState,
} from "./state.ts";

const T0 = new Date("2026-04-28T14:00:00.000Z");
const T1 = new Date("2026-04-28T14:05:00.000Z");

function connected(): DaemonState {
  return nextState(
    undefined,
    "n-1",
    {
      status: "connected",
      endpoint: "ctl:443",
      failures: 0,
      auth: { state: "ok", detail: "accepted" },
    },
    T0,
    42,
  );
}

Deno.test("a connection error is kept, with its time, after the daemon reconnects", () => {
  const failed = nextState(
    connected(),
    "n-1",
    {
      status: "disconnected",
      endpoint: "ctl:443",
      failures: 3,
      error: "cannot reach ctl:443: connection refused",
    },
    T1,
    42,
  );
  assert.equal(failed.last_error, "cannot reach ctl:443: connection refused");
  assert.equal(failed.last_error_at, T1.toISOString());
  assert.equal(failed.failures, 3);
  assert.equal(failed.since, T1.toISOString(), "the status changed");
  assert.equal(failed.auth, "ok", "a network failure says nothing about the credentials");

  const later = new Date(T1.getTime() + 60_000);
  const back = nextState(
    failed,
    "n-1",
    { status: "connected", endpoint: "ctl:443", failures: 0 },
    later,
  );
  assert.equal(back.last_error, failed.last_error);
  assert.equal(back.last_error_at, T1.toISOString());
  assert.equal(back.failures, 0);
  assert.equal(back.since, later.toISOString());
});

Deno.test("an auth change alone keeps the status, its since and the failure count", () => {
  const failed = nextState(connected(), "n-1", {
    status: "disconnected",
    endpoint: "ctl:443",
    failures: 2,
    error: "boom",
  }, T0);
  const expired = nextState(failed, "n-1", {
    auth: { state: "token_expired", detail: "node.token expired at …" },
  }, T1);
  assert.equal(expired.status, "disconnected");
  assert.equal(expired.since, failed.since);
  assert.equal(expired.failures, 2);
  assert.equal(expired.endpoint, "ctl:443");
  assert.equal(expired.auth, "token_expired");
  assert.equal(expired.auth_detail, "node.token expired at …");
  assert.equal(expired.last_error, "boom");
});

Deno.test("another node's state is not carried over", () => {
  const fresh = nextState(connected(), "n-2", { status: "connected", endpoint: "ctl:443" }, T1);
  assert.equal(fresh.node_id, "n-2");
  assert.equal(fresh.auth, undefined);
  assert.equal(fresh.failures, 0);
  assert.equal(fresh.since, T1.toISOString());
});

Deno.test("a heartbeat ack time is kept within one status only", () => {
  const acked = nextState(connected(), "n-1", {
    status: "connected",
    endpoint: "ctl:443",
    heartbeatAck: T1,
  }, T1);
  assert.equal(acked.last_heartbeat_ack_at, T1.toISOString());
  const kept = nextState(acked, "n-1", { auth: { state: "ok", detail: "refreshed" } }, T1);
  assert.equal(kept.last_heartbeat_ack_at, T1.toISOString());
  const dropped = nextState(acked, "n-1", { status: "disconnected", error: "x" }, T1);
  assert.equal(dropped.last_heartbeat_ack_at, undefined);
});

Deno.test("a long error is cut to LAST_ERROR_MAX_CHARS, never inside a surrogate pair", () => {
  const long = nextState(undefined, "n-1", { error: "e".repeat(5000) }, T0);
  assert.equal(long.last_error!.length, LAST_ERROR_MAX_CHARS);
  assert.ok(long.last_error!.endsWith("…"));
  // A pair straddling the cut: its high half would be the last kept character.
  const emoji = "x".repeat(LAST_ERROR_MAX_CHARS - 2) + "😀".repeat(10);
  const cut = nextState(undefined, "n-1", { error: emoji }, T0).last_error!;
  assert.ok(cut.length <= LAST_ERROR_MAX_CHARS);
  assert.ok(!/[\uD800-\uDBFF]…$/.test(cut), "no lone high surrogate before the ellipsis");
  assert.equal(nextState(undefined, "n-1", { error: "short" }, T0).last_error, "short");
});

Deno.test("DaemonStateFile applies concurrent updates in order and the file survives a restart", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/state.json`;
    const file = await DaemonStateFile.open(path);
    assert.equal(file.current, undefined);
    await Promise.all([
      file.update("n-1", { status: "disconnected", endpoint: "a:1", failures: 1, error: "first" }),
      file.update("n-1", { auth: { state: "refreshing", detail: "renewing" } }),
      file.update("n-1", { failures: 2, error: "second" }),
    ]);
    const onDisk = await readDaemonState(path);
    assert.equal(onDisk?.last_error, "second");
    assert.equal(onDisk?.failures, 2);
    assert.equal(onDisk?.auth, "refreshing");
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);

    const reopened = await DaemonStateFile.open(path);
    assert.deepEqual(reopened.of("n-1"), onDisk);
    assert.equal(reopened.of("n-other"), undefined);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a torn or foreign state.json reads as nothing", async () => {
  const dir = await Deno.makeTempDir();
  try {
    for (const text of ["{torn", "null", "42"]) {
      await Deno.writeTextFile(`${dir}/state.json`, text);
      assert.equal(await readDaemonState(`${dir}/state.json`), undefined, text);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("when a run of failures began is kept until a failure gives a new one", () => {
  const failing = nextState(undefined, "n-1", { failures: 2, failingSince: T0 }, T0);
  assert.equal(failing.failing_since, T0.toISOString());
  // A stream that connects (failures 0 on disk) and drops before it is healthy is the same run.
  const connected = nextState(failing, "n-1", { status: "connected", failures: 0 }, T1);
  assert.equal(connected.failing_since, T0.toISOString());
  const later = nextState(connected, "n-1", { failures: 1, failingSince: T1 }, T1);
  assert.equal(later.failing_since, T1.toISOString());
});
