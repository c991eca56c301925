// `aegis audit export | verify`: a tenant's audit log as JSON lines, and its hash chain checked
// here, on the operator's machine, with shared/audit_chain.ts. The controller only hands over
// records; whether they are intact is decided by this client, so a database edited behind the
// controller's back (or a controller that lies) cannot vouch for itself.
import { readNdjson } from "./ndjson.ts";
import type { Command } from "@commander-js/extra-typings";
import type { Io } from "../../shared/cli/io.ts";
import { AegisError, ERROR_CODES } from "../../shared/errors.ts";
import {
  type AuditAnchor,
  type AuditRecord,
  ChainVerifier,
  describeProblem,
  type VerifyResult,
} from "../../shared/audit_chain.ts";
import { OperatorApi, resolveTarget, type TargetOptions } from "../operator/api_client.ts";
import { type CliContext, outputOption } from "./context.ts";

/** Longest line of an export: a record (detail at most 4 KiB) is far below it. */
const MAX_LINE_BYTES = 64 * 1024;

type Line =
  | ({ type: "anchor"; since: string | null; limit: number | null } & AuditAnchor)
  | ({ type: "record" } & AuditRecord)
  | { type: "end"; records: number }
  | { type: "error"; error: { code: string; message: string; hint?: string } };

interface ExportOptions extends TargetOptions {
  tenant?: string;
  since?: string;
  limit?: string;
  out?: string;
}

interface VerifyOptions extends TargetOptions {
  tenant?: string;
  file?: string;
  output: string;
}

export async function auditExport(options: ExportOptions, io: Io): Promise<number> {
  const body = await fetchExport(options);
  const path = options.out;
  // Written beside the target and renamed once complete: a cut-off export never poses as one.
  const partial = path ? `${path}.partial` : undefined;
  const file = partial
    ? await Deno.open(partial, { write: true, create: true, truncate: true, mode: 0o600 })
    : undefined;
  const encoder = new TextEncoder();
  let summary: { tenant: string; records: number; first?: number; last?: number } | undefined;
  try {
    let count = 0;
    let first: number | undefined;
    let last: number | undefined;
    let tenant = "";
    for await (const line of exportLines(body, "the controller")) {
      if (line.type === "error") throw remoteError(line.error);
      const text = JSON.stringify(line) + "\n";
      if (file) await writeAll(file, encoder.encode(text));
      else io.out(text);
      if (line.type === "anchor") tenant = line.tenant_id;
      if (line.type === "record") {
        first ??= line.seq;
        last = line.seq;
        count++;
      }
      if (line.type === "end") summary = { tenant, records: count, first, last };
    }
    if (!summary) throw cutOff("the controller");
  } catch (error) {
    file?.close();
    if (partial) await Deno.remove(partial).catch(() => {});
    throw error;
  }
  if (file && partial && path) {
    file.close();
    await Deno.rename(partial, path);
    io.err(
      `exported ${summary.records} record(s) of tenant ${summary.tenant}${
        summary.first === undefined ? "" : ` (seq ${summary.first}..${summary.last})`
      } to ${path}\n`,
    );
  }
  return 0;
}

export async function auditVerify(options: VerifyOptions, io: Io): Promise<number> {
  const source = options.file ?? "the controller";
  const body = options.file
    ? (await openFile(options.file)).readable
    : await fetchExport({ ...options, since: undefined, limit: undefined });
  let verifier: ChainVerifier | undefined;
  let anchor: Extract<Line, { type: "anchor" }> | undefined;
  let result: VerifyResult | undefined;
  let cutAt: number | undefined;
  for await (const line of exportLines(body, source)) {
    if (line.type === "error") throw remoteError(line.error);
    if (line.type === "anchor") {
      if (anchor) throw malformed(source, "it has a second anchor line");
      if (options.tenant && options.file && line.tenant_id !== options.tenant) {
        throw new AegisError(
          "INVALID_ARGUMENT",
          `${source} is an export of tenant "${line.tenant_id}", not "${options.tenant}"`,
        );
      }
      anchor = checkedAnchor(line, source);
      verifier = new ChainVerifier(anchor, { partialFront: anchor.since !== null });
      continue;
    }
    if (!verifier || !anchor) throw malformed(source, "it does not start with its anchor line");
    if (result) throw malformed(source, "it goes on after its end line");
    if (line.type === "record") verifier.add(line);
    if (line.type === "end") {
      // An export cut by its limit stops before the head: its tail cannot be held against it.
      const cutByLimit = anchor.limit !== null && line.records >= anchor.limit;
      cutAt = cutByLimit ? line.records : undefined;
      result = verifier.finish({ partialTail: cutByLimit });
    }
  }
  if (!result || !anchor) throw cutOff(source, options.file !== undefined);
  if (options.output === "json") {
    io.out(
      JSON.stringify(
        {
          tenant_id: result.tenantId,
          ok: result.ok,
          records: result.records,
          first_seq: result.firstSeq,
          last_seq: result.lastSeq,
          pruned_through_seq: anchor.pruned_through_seq,
          head_seq: anchor.head_seq,
          problems: result.problems.map((p) => ({ ...p, message: describeProblem(p) })),
          more_problems: result.moreProblems,
        },
        null,
        2,
      ) + "\n",
    );
    return result.ok ? 0 : ERROR_CODES.AUDIT_CHAIN_BROKEN.exit;
  }
  if (result.ok) {
    const range = result.firstSeq === null
      ? "no records left"
      : `seq ${result.firstSeq}..${result.lastSeq}`;
    const notes = [
      anchor.pruned_through_seq > 0 ? `1..${anchor.pruned_through_seq} pruned for retention` : "",
      anchor.since !== null ? `exported since ${anchor.since}: earlier ones not checked` : "",
      cutAt !== undefined ? `export cut at ${cutAt} records: later ones not checked` : "",
    ].filter(Boolean);
    io.out(
      `audit log of tenant ${result.tenantId}: ${result.records} records intact (${range})` +
        (notes.length ? `; ${notes.join("; ")}` : "") + "\n",
    );
    return 0;
  }
  for (const problem of result.problems) io.out(`✖ ${describeProblem(problem)}\n`);
  if (result.moreProblems) io.out(`✖ … and ${result.moreProblems} more problem(s)\n`);
  const count = result.problems.length + result.moreProblems;
  throw new AegisError(
    "AUDIT_CHAIN_BROKEN",
    `audit log of tenant ${result.tenantId} is broken: ${count} problem(s) in ${result.records} ` +
      `record(s) read`,
  );
}

/** The anchor line, its fields checked: everything after is judged against it. */
function checkedAnchor(
  line: Extract<Line, { type: "anchor" }>,
  source: string,
): Extract<Line, { type: "anchor" }> {
  const count = (n: unknown) => Number.isSafeInteger(n) && (n as number) >= 0;
  const hash = (h: unknown) => typeof h === "string" && /^[0-9a-f]{64}$/.test(h);
  if (
    typeof line.tenant_id !== "string" || !count(line.pruned_through_seq) ||
    !count(line.head_seq) || line.head_seq < line.pruned_through_seq ||
    !hash(line.pruned_through_hash) || !hash(line.head_hash)
  ) {
    throw malformed(source, "its anchor line is not one");
  }
  // Exports saved before these fields existed (or edited by hand) have neither: a whole chain.
  return {
    ...line,
    since: typeof line.since === "string" ? line.since : null,
    limit: count(line.limit) ? line.limit : null,
  };
}

async function fetchExport(
  options: TargetOptions & { tenant?: string; since?: string; limit?: string },
): Promise<ReadableStream<Uint8Array>> {
  const api = new OperatorApi(resolveTarget(options, Deno.env.toObject()));
  const query = new URLSearchParams();
  if (options.tenant) query.set("tenant_id", options.tenant);
  if (options.since) {
    const since = new Date(options.since);
    if (Number.isNaN(since.getTime())) {
      throw new AegisError(
        "INVALID_ARGUMENT",
        `--since must be an ISO-8601 time, not "${options.since}"`,
      );
    }
    query.set("since", since.toISOString());
  }
  if (options.limit) {
    if (!/^\d{1,8}$/.test(options.limit) || Number(options.limit) < 1) {
      throw new AegisError(
        "INVALID_ARGUMENT",
        `--limit must be a positive count, not "${options.limit}"`,
      );
    }
    query.set("limit", options.limit);
  }
  const search = query.size ? `?${query}` : "";
  const response = await api.request(`/v1/audit/export${search}`, { method: "GET" });
  if (!response.body) throw cutOff("the controller");
  return response.body;
}

async function openFile(path: string): Promise<Deno.FsFile> {
  try {
    return await Deno.open(path, { read: true });
  } catch (error) {
    throw new AegisError("INVALID_ARGUMENT", `cannot read ${path}: ${(error as Error).message}`);
  }
}

/** An export's lines, parsed as they arrive, each bounded in size (readNdjson). */
async function* exportLines(
  body: ReadableStream<Uint8Array>,
  source: string,
): AsyncGenerator<Line> {
  let number = 0;
  try {
    for await (const line of readNdjson<Line>(body, source, undefined, MAX_LINE_BYTES)) {
      number++;
      if (!line || typeof line !== "object" || typeof line.type !== "string") {
        throw malformed(source, `line ${number} is not an export line`);
      }
      yield line;
    }
  } catch (error) {
    // A line that is not JSON, or too long, says so as an export problem.
    if (error instanceof AegisError && error.code === "INVALID_ARGUMENT") {
      throw malformed(
        source,
        error.message.replace(/ from .*? is not JSON$/, " is not an export line")
          .replace(/ from .*? is /, " is "),
      );
    }
    throw error;
  }
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  for (let written = 0; written < bytes.length;) {
    written += await file.write(bytes.subarray(written));
  }
}

function remoteError(error: { code: string; message: string; hint?: string }): AegisError {
  return new AegisError(error.code as never, error.message, { hint: error.hint });
}

function malformed(source: string, why: string): AegisError {
  return new AegisError("INVALID_ARGUMENT", `${source} is not an audit log export: ${why}`);
}

function cutOff(source: string, file = false): AegisError {
  // From the controller the connection was lost; a file was saved (or copied) incomplete.
  return new AegisError(
    file ? "INVALID_ARGUMENT" : "UNREACHABLE",
    `the export from ${source} ends before its end line: it was cut short`,
    { hint: "Export again; a cut-off export cannot tell deleted records from unsent ones." },
  );
}

export function registerAudit(program: Command, { io, setExit }: CliContext): void {
  const audit = program.command("audit").description(
    "the tenant's audit log: who did what, when, and how it ended",
  );
  audit.command("export")
    .description("write the audit log as JSON lines (an anchor line, then one line per record)")
    .option("--tenant <tenant>", "tenant to export (default: your token's own)")
    .option("--since <time>", "only records from this ISO-8601 time on")
    .option("--limit <count>", "at most this many records")
    .option("-o, --out <file>", "write to FILE instead of standard output")
    .option("--endpoint <url>", "controller endpoint (or AEGIS_ENDPOINT)")
    .option("--token <jwt>", "operator token (or AEGIS_TOKEN)")
    .action(async (opts) => setExit(await auditExport(opts, io)));
  audit.command("verify")
    .description("check the audit log's hash chain here, on this machine")
    .option("--tenant <tenant>", "tenant to verify (default: your token's own)")
    .option("--file <file>", "verify a saved export instead of fetching one")
    .addOption(outputOption())
    .option("--endpoint <url>", "controller endpoint (or AEGIS_ENDPOINT)")
    .option("--token <jwt>", "operator token (or AEGIS_TOKEN)")
    .action(async (opts) => setExit(await auditVerify(opts, io)));
}
