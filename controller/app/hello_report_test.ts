import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { ConnectionReportSchema } from "../../shared/gen/aegis/edge/v1/node_cluster_pb.ts";
import { boundReport, REPORT_LIMITS } from "./hello_report.ts";

const NOW = new Date("2026-04-28T15:00:00.000Z");
const report = (init: Parameters<typeof create<typeof ConnectionReportSchema>>[1]) =>
  create(ConnectionReportSchema, init);

Deno.test("a report is stored as sent when it is within bounds", () => {
  const at = new Date("2026-04-28T14:59:00.000Z");
  assert.deepEqual(
    boundReport(
      report({
        lastError: "cannot reach ctl:443",
        lastErrorAt: timestampFromDate(at),
        failures: 3,
      }),
      NOW,
    ),
    { lastError: "cannot reach ctl:443", lastErrorAt: at, failures: 3 },
  );
  assert.deepEqual(boundReport(undefined, NOW), {
    lastError: null,
    lastErrorAt: null,
    failures: 0,
  });
});

Deno.test("a long message is cut to the limit and ends with …; control characters are blanked", () => {
  const long = boundReport(report({ lastError: "\u001b[31m" + "e".repeat(100_000) }), NOW);
  assert.equal(long.lastError!.length, REPORT_LIMITS.lastErrorChars);
  assert.ok(long.lastError!.endsWith("…"));
  assert.ok(!/\p{Cc}/u.test(long.lastError!), "no control characters");
  assert.equal(boundReport(report({ lastError: "a\nb\r\tc" }), NOW).lastError, "a b  c");
  const exact = "x".repeat(REPORT_LIMITS.lastErrorChars);
  assert.equal(boundReport(report({ lastError: exact }), NOW).lastError, exact);
});

Deno.test("a time after the controller's clock is the controller's time; a bogus one is unknown", () => {
  const ahead = boundReport(
    report({ lastError: "x", lastErrorAt: timestampFromDate(new Date("2100-01-01T00:00:00Z")) }),
    NOW,
  );
  assert.deepEqual(ahead.lastErrorAt, NOW);
  const ancient = boundReport(
    report({ lastError: "x", lastErrorAt: timestampFromDate(new Date("1970-01-02T00:00:00Z")) }),
    NOW,
  );
  assert.equal(ancient.lastErrorAt, null);
  const huge = boundReport(
    report({ lastError: "x", lastErrorAt: { seconds: 2n ** 62n, nanos: 0 } as never }),
    NOW,
  );
  assert.equal(huge.lastErrorAt, null);
  const noMessage = boundReport(
    report({ lastError: "  ", lastErrorAt: timestampFromDate(NOW), failures: 2 }),
    NOW,
  );
  assert.deepEqual(noMessage, { lastError: null, lastErrorAt: null, failures: 2 });
});

Deno.test("a failure count past the column's range is stored as its maximum", () => {
  assert.equal(boundReport(report({ failures: 0xffff_ffff }), NOW).failures, 2 ** 31 - 1);
});
