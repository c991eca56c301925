// Bounds on the ConnectionReport a node sends in Hello (its last connection error, when, and how
// many attempts failed before this stream). The report is stored with the node and shown to
// operators, so it is bounded like the rest of Hello (hello_limits.ts) — but never refused: a
// daemon must not be kept off its controller by the text of its own last error. The rules:
// - the message has its control characters (newlines, escape sequences, …) replaced by spaces,
//   and is cut to LAST_ERROR_MAX_CHARS characters, the last of which is then "…";
// - a time later than the controller's clock is taken as the controller's time (a host clock
//   that runs ahead cannot put an error in the future); a time before 2000 or one that is not a
//   time at all is stored as unknown (null); without a message, no time is kept;
// - a failure count beyond what the database column holds is stored as that column's maximum.
import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { ConnectionReport } from "../../shared/gen/aegis/edge/v1/node_cluster_pb.ts";

export const REPORT_LIMITS = {
  lastErrorChars: 1024,
  /** PostgreSQL integer. */
  failures: 2 ** 31 - 1,
  earliest: new Date("2000-01-01T00:00:00Z"),
} as const;

/** What is stored for one report. */
export interface StoredReport {
  lastError: string | null;
  lastErrorAt: Date | null;
  failures: number;
}

export function boundReport(report: ConnectionReport | undefined, now: Date): StoredReport {
  const failures = Math.min(report?.failures ?? 0, REPORT_LIMITS.failures);
  const message = (report?.lastError ?? "").replace(/[\p{Cc}\p{Cf}]/gu, " ").trim();
  if (!message) return { lastError: null, lastErrorAt: null, failures };
  return { lastError: cut(message), lastErrorAt: boundTime(report?.lastErrorAt, now), failures };
}

function cut(message: string): string {
  const max = REPORT_LIMITS.lastErrorChars;
  if (message.length <= max) return message;
  let end = max - 1;
  // Never half a surrogate pair.
  if (/[\uD800-\uDBFF]/.test(message[end - 1])) end--;
  return message.slice(0, end) + "…";
}

function boundTime(at: ConnectionReport["lastErrorAt"], now: Date): Date | null {
  if (!at) return null;
  let date: Date;
  try {
    date = timestampDate(at);
  } catch {
    return null;
  }
  const ms = date.getTime();
  if (Number.isNaN(ms) || ms < REPORT_LIMITS.earliest.getTime()) return null;
  return ms > now.getTime() ? new Date(now) : date;
}
