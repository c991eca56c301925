// Who is calling: operator principals and their edge roles, the identity headers a client sends
// beside its token, and a bearer token that never shows itself however it is printed.
import assert from "node:assert/strict";
import { inspect as nodeInspect } from "node:util";
import { AegisError } from "../../shared/errors.ts";
import {
  actorOf,
  asPrincipal,
  checkIdentityHeaders,
  EDGE_ROLES,
  OPERATOR_CONTEXT,
  operatorPrincipal,
  type Principal,
  RedactedToken,
  requireOperatorKind,
  requireRole,
} from "./identity.ts";

const claims = {
  iss: "https://ops.test",
  sub: "alice",
  exp: 0,
  tenant_id: "t1",
  aegis_role: "operator" as const,
  tenants: [],
};

const ann: Principal = {
  iss: "https://users.test",
  sub: "ann-7f3c",
  exp: 0,
  tenant_id: "user-ann-7f3c",
  tenants: [],
  aegis_role: "operator",
  kind: "consumer",
  context: "zaru-pro",
  tier: "Pro",
  roles: [],
};

const code = (c: string) => (error: unknown) => error instanceof AegisError && error.code === c;

Deno.test("operatorPrincipal() runs under the operator context with its role's edge roles", () => {
  const principal = operatorPrincipal(claims);
  assert.equal(principal.kind, "operator");
  assert.equal(principal.context, OPERATOR_CONTEXT);
  assert.deepEqual(principal.roles, [EDGE_ROLES.fleetManage, EDGE_ROLES.enroll]);
  assert.deepEqual(operatorPrincipal({ ...claims, aegis_role: "readonly" }).roles, []);
  // A roles claim is taken as it is, an empty one too.
  assert.deepEqual(operatorPrincipal({ ...claims, roles: [EDGE_ROLES.enroll] }).roles, [
    EDGE_ROLES.enroll,
  ]);
  assert.deepEqual(operatorPrincipal({ ...claims, roles: [] }).roles, []);
  assert.deepEqual(operatorPrincipal(claims, [EDGE_ROLES.heartbeat]).roles, [EDGE_ROLES.heartbeat]);
  // The roles list is the principal's own: changing it does not change the claims'.
  const roles = [EDGE_ROLES.enroll];
  operatorPrincipal({ ...claims, roles }).roles.push("x");
  assert.deepEqual(roles, [EDGE_ROLES.enroll]);
});

Deno.test("asPrincipal() keeps a principal and makes bare claims an operator", () => {
  assert.equal(asPrincipal(ann), ann);
  assert.equal(asPrincipal(claims).kind, "operator");
  assert.deepEqual(actorOf(ann), {
    kind: "consumer",
    issuer: "https://users.test",
    subject: "ann-7f3c",
    context: "zaru-pro",
  });
  assert.throws(() => requireOperatorKind(ann), code("FORBIDDEN"));
  requireOperatorKind(operatorPrincipal(claims));
  assert.throws(() => requireRole(ann, EDGE_ROLES.enroll, "issuing a token"), code("FORBIDDEN"));
  requireRole(claims, EDGE_ROLES.enroll, "issuing a token");
});

Deno.test("identity headers that agree with the token pass", () => {
  checkIdentityHeaders(ann, { userId: "ann-7f3c", tier: "Pro" });
  // Tiers are matched without case; surrounding whitespace is not part of a value.
  checkIdentityHeaders(ann, { userId: " ann-7f3c ", tier: "PRO" });
  checkIdentityHeaders(ann, { tier: "pro" });
});

Deno.test("absent identity headers pass", () => {
  checkIdentityHeaders(ann, {});
  checkIdentityHeaders(ann, { userId: null, tier: null });
  checkIdentityHeaders(ann, { userId: "", tier: "  " });
  checkIdentityHeaders(operatorPrincipal(claims), { userId: undefined, tier: undefined });
});

Deno.test("identity headers that disagree with the token are refused", () => {
  const refused = (headers: { userId?: string; tier?: string }, header: string) =>
    assert.throws(() => checkIdentityHeaders(ann, headers), (error: unknown) => {
      assert.ok(error instanceof AegisError);
      assert.equal(error.code, "UNAUTHENTICATED");
      assert.match(error.message, new RegExp(`the ${header} header disagrees with the token`));
      return true;
    });
  refused({ userId: "ben" }, "X-Zaru-User-ID");
  refused({ userId: "ANN-7F3C" }, "X-Zaru-User-ID");
  refused({ userId: "ann-7f3c", tier: "Enterprise" }, "X-Zaru-Tier");
  refused({ tier: "Pro ", userId: "ann" }, "X-Zaru-User-ID");
  // An operator has no tier: any tier header is a claim the token does not make.
  assert.throws(
    () => checkIdentityHeaders(operatorPrincipal(claims), { userId: "alice", tier: "Pro" }),
    code("UNAUTHENTICATED"),
  );
});

Deno.test("over-long identity headers are refused without being echoed", () => {
  const long = "a".repeat(257);
  for (
    const headers of [{ userId: long }, { tier: long }, { userId: `ann-7f3c${" ".repeat(300)}x` }]
  ) {
    assert.throws(() => checkIdentityHeaders(ann, headers), (error: unknown) => {
      assert.ok(error instanceof AegisError);
      assert.equal(error.code, "UNAUTHENTICATED");
      assert.ok(!error.message.includes("aaaa") && error.message.length < 200, error.message);
      return true;
    });
  }
  // Even a header equal to an over-long subject: no provider issues one that long.
  assert.throws(
    () => checkIdentityHeaders({ ...ann, sub: long }, { userId: long }),
    code("UNAUTHENTICATED"),
  );
  checkIdentityHeaders({ ...ann, sub: "b".repeat(256) }, { userId: "b".repeat(256) });
});

const SECRET = "eyJhbGciOiJFZERTQSJ9.c2VjcmV0LXBheWxvYWQ.c2lnbmF0dXJl";

Deno.test("RedactedToken shows its value only through reveal()", () => {
  const token = new RedactedToken(SECRET);
  assert.equal(token.reveal(), SECRET);
  const shown = [
    String(token),
    `${token}`,
    "" + token,
    [token].join(","),
    token.toLocaleString(),
    JSON.stringify(token),
    JSON.stringify({ authorization: token, nested: [token] }),
    Deno.inspect(token),
    Deno.inspect({ token }, { depth: 10, showHidden: true }),
    nodeInspect(token, { customInspect: false, showHidden: true }),
    nodeInspect(token),
    nodeInspect({ token }, { showHidden: true, depth: 10 }),
    new Error(`bad token ${token}`).message,
    new AegisError("UNAUTHENTICATED", `token ${token} was refused`).message,
    Deno.inspect(new Error("refused", { cause: token })),
    Deno.inspect(new AegisError("UNAUTHENTICATED", "refused", { cause: token })),
    JSON.stringify(new AegisError("UNAUTHENTICATED", "refused", { cause: token })),
    JSON.stringify(structuredClone({ token })),
    Object.keys(token).join(","),
    new URLSearchParams({ token: String(token) }).toString(),
  ];
  for (const text of shown) {
    assert.ok(!text.includes(SECRET), `leaked: ${text}`);
    assert.ok(!text.includes("c2VjcmV0"), `leaked a part: ${text}`);
  }
  assert.equal(String(token), "[redacted]");
  assert.equal(JSON.stringify({ t: token }), '{"t":"[redacted]"}');
  assert.equal(Deno.inspect(token), "RedactedToken([redacted])");
});

Deno.test("RedactedToken is redacted in a real process's console output, an uncaught error's too", async () => {
  // console.log writes straight to the process's stdout: the only way to see what it printed is
  // to be outside the process.
  const url = new URL("./identity.ts", import.meta.url).href;
  const script = `
    import { RedactedToken } from ${JSON.stringify(url)};
    const token = new RedactedToken(${JSON.stringify(SECRET)});
    console.log(token);
    console.log("%s|%o|%O|%d|%i|%f", token, token, token, token, token, token);
    console.log("header:", { authorization: token }, [token]);
    console.info(\`template \${token}\`);
    console.error("error", token);
    console.warn({ deep: { deeper: { token } } });
    console.dir(token, { depth: 5, showHidden: true });
    console.table([{ token }]);
    throw new Error("rejected " + token, { cause: token });
  `;
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--no-check", script],
    cwd: new URL("../..", import.meta.url),
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const stdout = new TextDecoder().decode(output.stdout);
  const stderr = new TextDecoder().decode(output.stderr);
  assert.equal(output.code, 1, "the script ends with its uncaught error");
  assert.match(stderr, /rejected \[redacted\]/);
  assert.match(stdout, /RedactedToken\(\[redacted\]\)/);
  assert.match(stdout, /template \[redacted\]/);
  for (const text of [stdout, stderr]) {
    assert.ok(!text.includes(SECRET), `leaked: ${text}`);
    assert.ok(!text.includes("c2VjcmV0"), `leaked a part: ${text}`);
  }
});
