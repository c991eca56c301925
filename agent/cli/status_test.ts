import assert from "node:assert/strict";
import { type AuthState, type DaemonState, nextState } from "../daemon/state.ts";
import {
  type ControllerAnswer,
  latestError,
  mergeAuth,
  type NodeStatus,
  renderStatus,
} from "./status.ts";

const NOW = new Date("2026-04-28T15:00:00.000Z");
const PAST = new Date("2026-04-28T14:00:00.000Z");
const FUTURE = new Date("2026-04-29T14:00:00.000Z");

function daemonSaying(auth: AuthState, detail: string): DaemonState {
  return nextState(
    undefined,
    "n-1",
    { status: "disconnected", auth: { state: auth, detail } },
    PAST,
  );
}

const ANSWERS: ControllerAnswer[] = [
  { kind: "accepted" },
  { kind: "unreachable", message: "cannot reach ctl:443" },
  { kind: "refused", code: "NODE_TOKEN_INVALID", message: "this node token was revoked" },
  { kind: "refused", code: "NODE_TOKEN_EXPIRED", message: "the node token expired" },
];
const DAEMONS: (DaemonState | undefined)[] = [
  undefined,
  daemonSaying("ok", "the controller accepted node.token"),
  daemonSaying("refreshing", "renewing it failed: cannot reach ctl:443"),
  daemonSaying("token_expired", "node.token expired"),
  daemonSaying("refused", "the controller refused this node"),
];

Deno.test("an expired node.token is never auth ok, whatever the controller or the daemon said", () => {
  for (const controller of ANSWERS) {
    for (const daemon of DAEMONS) {
      const auth = mergeAuth({ tokenExpires: PAST, now: NOW, controller, daemon });
      assert.equal(auth.state, "token_expired", JSON.stringify({ controller, daemon }));
      assert.match(auth.detail, /expired/);
      assert.equal(auth.token_expires, PAST.toISOString());
    }
  }
});

Deno.test("a valid token the controller accepts is ok, unless the daemon is renewing it", () => {
  const ok = mergeAuth({ tokenExpires: FUTURE, now: NOW, controller: { kind: "accepted" } });
  assert.equal(ok.state, "ok");
  assert.match(ok.detail, /accepted node\.token just now/);
  const stale = mergeAuth({
    tokenExpires: FUTURE,
    now: NOW,
    controller: { kind: "accepted" },
    daemon: daemonSaying("token_expired", "old news"),
  });
  assert.equal(stale.state, "ok", "the token was renewed since the daemon said so");
  const renewing = mergeAuth({
    tokenExpires: FUTURE,
    now: NOW,
    controller: { kind: "accepted" },
    daemon: daemonSaying("refreshing", "renewing it failed: cannot reach ctl:443"),
  });
  assert.equal(renewing.state, "refreshing");
  assert.equal(renewing.detail, "renewing it failed: cannot reach ctl:443");
});

Deno.test("the controller's refusal is shown as not ok, with its message", () => {
  const refused = mergeAuth({
    tokenExpires: FUTURE,
    now: NOW,
    controller: {
      kind: "refused",
      code: "NODE_TOKEN_INVALID",
      message: "this node token was revoked",
    },
    daemon: daemonSaying("ok", "accepted"),
  });
  assert.equal(refused.state, "refused");
  assert.match(refused.detail, /this node token was revoked/);
  const revoked = mergeAuth({
    tokenExpires: PAST,
    now: NOW,
    controller: { kind: "refused", code: "NODE_REVOKED", message: "node n-1 was revoked" },
  });
  assert.equal(revoked.state, "refused", "revocation is the stronger word");
  const skew = mergeAuth({
    tokenExpires: FUTURE,
    now: NOW,
    controller: { kind: "refused", code: "NODE_TOKEN_EXPIRED", message: "the node token expired" },
  });
  assert.equal(skew.state, "token_expired");
  assert.match(skew.detail, /clock/);
});

Deno.test("with the controller unreachable, the daemon's last word stands, labelled as such", () => {
  const unreachable: ControllerAnswer = { kind: "unreachable", message: "cannot reach ctl:443" };
  const nothing = mergeAuth({ tokenExpires: FUTURE, now: NOW, controller: unreachable });
  assert.equal(nothing.state, "unknown");
  const refused = mergeAuth({
    tokenExpires: FUTURE,
    now: NOW,
    controller: unreachable,
    daemon: daemonSaying("refused", "the controller refused this node: revoked"),
  });
  assert.equal(refused.state, "refused");
  assert.match(refused.detail, /as of the daemon's last report: .*revoked.*cannot reach/);
  const ok = mergeAuth({
    tokenExpires: FUTURE,
    now: NOW,
    controller: unreachable,
    daemon: daemonSaying("ok", "accepted"),
  });
  assert.equal(ok.state, "ok");
  const renewedSince = mergeAuth({
    tokenExpires: FUTURE,
    now: NOW,
    controller: unreachable,
    daemon: daemonSaying("token_expired", "node.token expired"),
  });
  assert.equal(renewedSince.state, "unknown", "an expiry the token on disk no longer has");
});

Deno.test("the last error is the newer of the daemon's record and the controller's", () => {
  const daemon = nextState(undefined, "n-1", { error: "local", errorAt: PAST }, PAST);
  assert.deepEqual(latestError(daemon, null), { message: "local", at: PAST.toISOString() });
  assert.deepEqual(latestError(undefined, { message: "told", at: NOW.toISOString() }), {
    message: "told",
    at: NOW.toISOString(),
  });
  assert.equal(latestError(undefined, null), null);
  assert.equal(latestError(daemon, { message: "told", at: NOW.toISOString() })?.message, "told");
  assert.equal(latestError(daemon, { message: "older", at: null })?.message, "local");
});

Deno.test("the text view shows auth, the last error with its time, and failures", () => {
  const view: NodeStatus = {
    node_id: "n-1",
    tenant: "t",
    status: "Disconnected",
    since: null,
    endpoint: "ctl:443",
    heartbeat_age: null,
    capabilities: { os: "linux", arch: "x86_64", local_tools: [] },
    labels: {},
    key_fingerprint: "SHA256:x",
    token_expires: PAST.toISOString(),
    auth: { state: "token_expired", detail: "node.token expired at …", token_expires: "" },
    last_error: {
      message: "cannot reach ctl:443",
      at: new Date(Date.now() - 90_000).toISOString(),
    },
    failures: 4,
  };
  const text = renderStatus(view);
  assert.match(text, /^auth: +token_expired: node\.token expired at …$/m);
  assert.match(text, /^last_error: +\S+Z \(1m30s ago\): cannot reach ctl:443$/m);
  assert.match(text, /^failures: +4$/m);
  assert.match(renderStatus({ ...view, last_error: null }), /^last_error: +-$/m);
});
