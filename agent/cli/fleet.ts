// `aegis edge fleet keys rotate | token refresh | exec | show`: one operation over many hosts,
// in waves, with per-node results as they arrive and a non-zero exit when any node failed.
import type { Command } from "@commander-js/extra-typings";
import { AegisError } from "../../shared/errors.ts";
import { parseDuration } from "../../shared/duration.ts";
import type { Io } from "../../shared/cli/io.ts";
import { OperatorApi, resolveTarget, type TargetOptions } from "../operator/api_client.ts";
import { type CliContext, outputOption } from "./context.ts";
import { readNdjson } from "./ndjson.ts";
import { table } from "./hosts.ts";
import type { FleetEvent } from "../../shared/fleet_events.ts";

interface FleetOptions extends TargetOptions {
  target: string;
  mode: string;
  onError: string;
  deadline: string;
  output: string;
}

type Event = FleetEvent;

export async function runFleet(
  operation: string,
  args: Record<string, unknown>,
  options: FleetOptions,
  io: Io,
): Promise<number> {
  const api = new OperatorApi(resolveTarget(options, Deno.env.toObject()));
  const response = await api.request("/v1/edge/fleet/operations", {
    method: "POST",
    body: JSON.stringify({
      operation,
      target: options.target,
      mode: options.mode,
      on_error: options.onError,
      deadline_secs: Math.max(1, Math.round(parseDuration(options.deadline, "--deadline") / 1000)),
      arguments: args,
    }),
  });
  const json = options.output === "json";
  const results: unknown[] = [];
  let summary: Extract<Event, { type: "summary" }> | undefined;
  let started: Extract<Event, { type: "operation" }> | undefined;
  let opId = "";
  for await (const event of readNdjson<Event>(response.body!)) {
    if (event.type === "error") {
      throw new AegisError(event.error.code as never, event.error.message, {
        hint: event.error.hint,
      });
    }
    if (event.type === "operation") [opId, started] = [event.op_id, event];
    if (event.type === "result") results.push(event);
    if (event.type === "summary") summary = event;
    if (!json) io.out(renderEvent(event));
  }
  if (!summary) {
    throw new AegisError(
      "UNREACHABLE",
      `the controller ended fleet operation ${opId} before its summary`,
    );
  }
  if (json) {
    io.out(
      JSON.stringify(
        {
          op_id: summary.op_id,
          target: started?.target ?? options.target,
          target_source: started?.target_source ?? null,
          target_note: started?.target_note ?? null,
          status: summary.status,
          counts: summary.counts,
          reason: summary.reason ?? null,
          results,
        },
        null,
        2,
      ) + "\n",
    );
  }
  const { ok = 0 } = summary.counts;
  return ok === results.length && summary.status === "done" ? 0 : 1;
}

function renderEvent(event: Event): string {
  switch (event.type) {
    case "operation":
      return `[fleet ${event.op_id}] ${event.operation} on ${event.target}: ${event.total} node(s), ${event.mode}, on-error ${event.on_error}\n` +
        (event.target_note ? `! ${event.target_note}\n` : "");
    case "wave":
      return `[wave ${event.wave}] starting ${event.size} of ${event.total} nodes\n`;
    case "result": {
      const mark = event.status === "ok"
        ? `✔ ${event.detail}`
        : event.status === "skipped"
        ? `- skipped (${event.detail})`
        : `✖ failed (${event.status === "failed" ? "" : `${event.status}: `}${event.detail})`;
      return `[${event.node_id} ${event.name}] ${mark}\n`;
    }
    case "summary": {
      const c = event.counts;
      const failed = (c.failed ?? 0) + (c.timed_out ?? 0) + (c.offline ?? 0);
      return `Summary: ${c.ok ?? 0} ok, ${failed} failed (${c.offline ?? 0} offline, ${
        c.timed_out ?? 0
      } timed out), ` +
        `${c.skipped ?? 0} skipped${event.reason ? ` — ${event.reason}` : ""}\n` +
        `Results are kept: aegis edge fleet show ${event.op_id}\n`;
    }
    default:
      return "";
  }
}

export async function fleetStop(opId: string, options: TargetOptions, io: Io): Promise<number> {
  const api = new OperatorApi(resolveTarget(options, Deno.env.toObject()));
  await api.post(`/v1/edge/fleet/operations/${encodeURIComponent(opId)}/stop`, {});
  io.out(
    `${opId}: asked to start no more hosts; those running finish (aegis edge fleet show ${opId})\n`,
  );
  return 0;
}

export async function fleetShow(
  opId: string,
  options: TargetOptions & { output: string },
  io: Io,
): Promise<number> {
  const api = new OperatorApi(resolveTarget(options, Deno.env.toObject()));
  const op = await api.get<Record<string, unknown> & { results: Record<string, unknown>[] }>(
    `/v1/edge/fleet/operations/${encodeURIComponent(opId)}`,
  );
  if (options.output === "json") {
    io.out(JSON.stringify(op, null, 2) + "\n");
    return 0;
  }
  io.out(
    `${op.op_id}  ${op.operation} on ${op.target}  ${op.mode}, on-error ${op.on_error}  ${op.status}` +
      `  by ${op.requested_by} at ${op.started_at}\n`,
  );
  io.out(table(
    ["WAVE", "NODE_ID", "NAME", "RESULT", "DETAIL"],
    op.results.map((
      r,
    ) => [
      String(r.wave),
      String(r.node_id),
      String(r.name),
      String(r.status),
      String(r.detail ?? ""),
    ]),
  ));
  return 0;
}

export function registerFleet(edge: Command, { io, setExit }: CliContext): void {
  const fleet = edge.command("fleet").description("operations over many hosts, in waves");
  const common = (command: Command) =>
    command
      .requiredOption(
        "--target <target>",
        "all | tags=AnyOf(a,b) | tags=AllOf(a,b) | labels=key:value | n-…[,n-…]; " +
          "tags are operator-controlled, labels are self-reported by each node " +
          "(a host can claim any label)",
      )
      .option("--mode <mode>", "sequential | rolling=N | parallel", "rolling=5")
      .option("--on-error <policy>", "continue | stop-after=N | fail-fast", "continue")
      .option("--deadline <duration>", "per node", "60s")
      .addOption(outputOption())
      .option("--endpoint <url>", "controller endpoint (or AEGIS_ENDPOINT)")
      .option("--token <jwt>", "operator token (or AEGIS_TOKEN)");

  const keys = fleet.command("keys").description("node keys across the fleet");
  common(
    keys.command("rotate").description("each targeted daemon rotates its own key (dual-signed)"),
  )
    .option("--keep-old <duration>", "how long hosts keep the replaced key", "24h")
    .action(async (opts) =>
      setExit(await runFleet("keys.rotate", { keep_old: opts.keepOld }, opts, io))
    );

  const token = fleet.command("token").description("node tokens across the fleet");
  common(token.command("refresh").description("each targeted daemon refreshes its token"))
    .action(async (opts) => setExit(await runFleet("token.refresh", {}, opts, io)));

  common(fleet.command("exec").description("run a command on every targeted host"))
    .argument("<argv...>", "the command, after --")
    .action(async (argv, opts) => {
      const deadlineSecs = Math.round(parseDuration(opts.deadline, "--deadline") / 1000);
      setExit(await runFleet("exec", { argv, timeout_secs: deadlineSecs }, opts, io));
    });

  // Each host runs its own `aegis update` path (verified with its compiled-in key) and is ok
  // only once the controller sees it reconnect on the new version.
  common(
    fleet.command("upgrade").description(
      "each targeted host updates to the release this controller serves, rolling back by itself",
    ),
  )
    .option("--version <version>", "upgrade only if the controller serves exactly this version")
    .option(
      "--connect-deadline <duration>",
      "time each new daemon has to reach Connected before it rolls back",
      "60s",
    )
    .action(async (opts) => {
      const connectSecs = Math.round(
        parseDuration(opts.connectDeadline, "--connect-deadline") / 1000,
      );
      const args = {
        connect_deadline_secs: connectSecs,
        ...(opts.version ? { version: opts.version } : {}),
      };
      setExit(await runFleet("upgrade", args, opts, io));
    });

  fleet.command("stop")
    .description("start no more hosts in a running operation (those running finish)")
    .argument("<op-id>")
    .option("--endpoint <url>", "controller endpoint (or AEGIS_ENDPOINT)")
    .option("--token <jwt>", "operator token (or AEGIS_TOKEN)")
    .action(async (opId, opts) => setExit(await fleetStop(opId, opts, io)));

  fleet.command("show")
    .description("the kept results of a fleet operation")
    .argument("<op-id>")
    .addOption(outputOption())
    .option("--endpoint <url>", "controller endpoint (or AEGIS_ENDPOINT)")
    .option("--token <jwt>", "operator token (or AEGIS_TOKEN)")
    .action(async (opId, opts) => setExit(await fleetShow(opId, opts, io)));
}
