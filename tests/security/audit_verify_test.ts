// End to end: a real controller records what operators and nodes do in its audit log, `aegis audit export`
// saves it, and `aegis audit verify` (a real CLI process, checking the chain on its own side)
// passes while the log is intact and names the record once someone edits or deletes a row in the
// controller's PostgreSQL behind its back. PostgreSQL only: the test must write to the database
// while the controller runs, and the embedded database is locked by the controller process.
import assert from "node:assert/strict";
import { startControllerProcess } from "../support/controller.ts";
import { AGENT_MAIN, eventually, runDeno } from "../support/processes.ts";
import { TEST_DB_KIND } from "../support/db.ts";
import { enrollNewHost, type Host } from "../support/host.ts";
import { openDb } from "../../controller/store/db.ts";
import { ERROR_CODES } from "../../shared/errors.ts";

const opts = {
  sanitizeOps: false,
  sanitizeResources: false,
  ignore: TEST_DB_KIND !== "postgres",
};

Deno.test(
  `[${TEST_DB_KIND}] aegis audit verify passes an intact log and names an edited or deleted record` +
    (TEST_DB_KIND === "postgres"
      ? ""
      : " (needs AEGIS_TEST_PG_DSN: it edits rows under a running controller)"),
  opts,
  async () => {
    const controller = await startControllerProcess();
    const dir = await Deno.makeTempDir({ prefix: "aegis-audit-" });
    const sql = await openDb({ dsn: controller.db.dsn! });
    const hosts: Host[] = [];
    try {
      const token = await controller.operatorToken("team-a");
      const env = { HOME: dir, AEGIS_ENDPOINT: controller.endpoint, AEGIS_TOKEN: token };
      const aegis = (...args: string[]) => runDeno(AGENT_MAIN, ["audit", ...args], env);

      // What operators and nodes do, for real: an enrollment token issued over REST and a host
      // enrolled with it, the host rotating its own key, one more token issued.
      const { host, nodeId } = await enrollNewHost(controller, { name: "web-1" });
      hosts.push(host);
      const rotated = await host.aegis(["edge", "keys", "rotate"]);
      assert.equal(rotated.code, 0, rotated.stderr);
      const response = await controller.api("/v1/edge/enrollment-tokens", {
        method: "POST",
        token,
        body: JSON.stringify({ name: "web-2" }),
      });
      assert.equal(response.status, 201, await response.clone().text());
      await response.body?.cancel();
      // Records are written by a group commit just after each action answers.
      await eventually(async () => {
        const [{ n }] = await sql.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM audit_log WHERE tenant_id = 'team-a'`,
        );
        return n >= 3 ? n : undefined;
      }, "the three actions in the audit log");

      const intact = await aegis("verify");
      assert.equal(intact.code, 0, intact.stderr);
      assert.equal(intact.stdout, "audit log of tenant team-a: 3 records intact (seq 1..3)\n");

      // A saved export has the anchor, each record (who, what, outcome) and the end line.
      const saved = `${dir}/team-a.ndjson`;
      const exported = await aegis("export", "-o", saved);
      assert.equal(exported.code, 0, exported.stderr);
      const lines = (await Deno.readTextFile(saved)).trim().split("\n").map((l) => JSON.parse(l));
      assert.deepEqual(lines.map((l) => l.type), ["anchor", "record", "record", "record", "end"]);
      assert.deepEqual(
        [lines[0].tenant_id, lines[0].head_seq, lines[0].pruned_through_seq],
        ["team-a", 3, 0],
      );
      const records = lines.slice(1, 4);
      assert.deepEqual(records.map((r) => [r.seq, r.action, r.outcome, r.actor_kind]), [
        [1, "enrollment_token.issue", "ok", "operator"],
        [2, "node.rotate_key", "ok", "node"],
        [3, "enrollment_token.issue", "ok", "operator"],
      ]);
      assert.equal(records[1].actor_subject, nodeId);
      assert.equal(records[1].target, nodeId);
      for (const record of records) {
        assert.equal(record.tenant_id, "team-a");
        assert.ok(record.actor_subject, "the record names who did it");
        assert.ok(!JSON.stringify(record).includes("eyJ"), "no token in the audit log");
      }

      // Another tenant's operator cannot read it.
      const stranger = await controller.operatorToken("team-b");
      const refused = await runDeno(AGENT_MAIN, ["audit", "export", "--tenant", "team-a"], {
        ...env,
        AEGIS_TOKEN: stranger,
      });
      assert.equal(refused.code, ERROR_CODES.FORBIDDEN.exit, refused.stderr);
      assert.match(refused.stderr, /no rights on tenant "team-a"/);

      // Someone with database access changes what record 2 says.
      await sql.query(
        `UPDATE audit_log SET outcome = 'refused' WHERE tenant_id = 'team-a' AND seq = 2`,
      );
      const edited = await aegis("verify");
      assert.equal(edited.code, ERROR_CODES.AUDIT_CHAIN_BROKEN.exit, edited.stderr);
      assert.equal(
        edited.stdout,
        "✖ record 2 was edited (its content no longer matches its hash)\n",
      );
      assert.match(edited.stderr, /audit log of tenant team-a is broken: 1 problem/);

      // The export saved before the edit still verifies, here, without the controller.
      const offline = await runDeno(AGENT_MAIN, ["audit", "verify", "--file", saved], {
        HOME: dir,
      });
      assert.equal(offline.code, 0, offline.stderr);
      assert.match(offline.stdout, /3 records intact \(seq 1\.\.3\)/);

      // Put back, then the newest record deleted: the head still knows it existed.
      await sql.query(
        `UPDATE audit_log SET outcome = 'ok' WHERE tenant_id = 'team-a' AND seq = 2`,
      );
      await sql.query(`DELETE FROM audit_log WHERE tenant_id = 'team-a' AND seq = 3`);
      const deleted = await aegis("verify", "--output", "json");
      assert.equal(deleted.code, ERROR_CODES.AUDIT_CHAIN_BROKEN.exit, deleted.stderr);
      const verdict = JSON.parse(deleted.stdout);
      assert.equal(verdict.ok, false);
      assert.deepEqual(verdict.problems.map((p: { message: string }) => p.message), [
        "record 3 is missing (it was the newest)",
      ]);
    } finally {
      await Promise.all(hosts.map((h) => h.cleanup()));
      await sql.close();
      await controller.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
);
