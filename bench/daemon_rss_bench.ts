// Idle memory of a real `aegis edge run` daemon, started the way its service is (the runtime,
// the entry module and DAEMON_V8_FLAGS) against a real controller. Prints numbers; asserts
// nothing about them.
//
//   deno task bench:daemon                          # 3 runs, 10 s connected each
//   deno task bench:daemon --runs 5 --idle 30       # longer, more runs
//   deno task bench:daemon --v8-flags=--no-maglev,--lite-mode   # try other V8 flags
//   deno task bench:daemon --v8-flags=--no-maglev --v8-flags=--no-maglev,--no-opt   # A/B, interleaved
//   deno task bench:daemon --deno-flags=--no-code-cache         # runtime flags too
//   deno task bench:daemon --env GLIBC_TUNABLES=glibc.malloc.arena_max=2   # daemon environment
//   deno task bench:daemon --load                   # and what the flags cost under work
//   deno task bench:daemon --heap                   # adds one run under the inspector: V8 heap
//
// RSS comes from /proc/<pid>/status (VmRSS, split into anonymous and file-backed pages), so the
// bench runs on Linux only. One `aegis --version` first loads every module once, so the runs
// measure a daemon whose transpiled code and V8 code cache are already on disk, as on a host.
// The heap run attaches the inspector, which costs memory itself: its RSS is not printed.
// Several --v8-flags are variants compared on the same controller and hosts, their runs
// interleaved (A B A B …), so that a machine whose load drifts during the bench shifts them alike.
import { parseArgs } from "node:util";
import { DAEMON_V8_FLAGS } from "../agent/self.ts";
import { type ControllerProcess, startControllerProcess } from "../tests/support/controller.ts";
import { type Host, makeHost } from "../tests/support/host.ts";
import { AGENT_MAIN, Background, freePort } from "../tests/support/processes.ts";
import { TEST_DB_KIND } from "../tests/support/db.ts";
import { heapAfterGc } from "./inspector_heap.ts";
import { measureLoad } from "./daemon_load.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    runs: { type: "string", default: "3" },
    idle: { type: "string", default: "10" },
    "v8-flags": { type: "string", multiple: true, default: [DAEMON_V8_FLAGS] },
    "deno-flags": { type: "string", default: "" },
    env: { type: "string", multiple: true, default: [] },
    heap: { type: "boolean", default: false },
    load: { type: "boolean", default: false },
    calls: { type: "string", default: "20" },
    "bulk-mib": { type: "string", default: "8" },
  },
});
const runs = Number(values.runs);
const idleMs = Number(values.idle) * 1000;
/** Each a comma-separated V8 flag list ("" for V8's defaults). */
const variants = values["v8-flags"];
const denoFlags = values["deno-flags"].split(" ").filter(Boolean);
/** Extra environment for the daemon (NAME=VALUE), e.g. glibc malloc tunables a unit could set. */
const daemonEnv = Object.fromEntries(values.env.map((pair) => pair.split(/=(.*)/s).slice(0, 2)));

console.log(
  `# daemon idle RSS on ${TEST_DB_KIND} (${Deno.build.os}/${Deno.build.arch}, ` +
    `${navigator.hardwareConcurrency} cores), deno ${Deno.version.deno}, v8 flags ` +
    variants.map((v) => `"${v}"`).join(" vs ") +
    (denoFlags.length ? `, runtime flags "${denoFlags.join(" ")}"` : "") +
    (values.env.length ? `, env ${values.env.join(" ")}` : ""),
);

const controller = await startControllerProcess();
const hosts: Host[] = [];
try {
  const idle = await enrolledHost(controller, hosts, []);
  const warm = await idle.host.aegis(["--version"]);
  if (warm.code !== 0) throw new Error(warm.stderr);

  const samples = variants.map(() => [] as number[]);
  for (let run = 1; run <= runs; run++) {
    for (const [i, v8Flags] of variants.entries()) {
      await withDaemon(idle.env, v8Flags, [], (daemon) => {
        const m = memory(daemon.child.pid);
        samples[i].push(m.rss);
        console.log(
          `run ${run}${label(i)}: VmRSS ${mib(m.rss)} MiB (anon ${mib(m.anon)}, file ${
            mib(m.file)
          }), peak ${mib(m.hwm)} MiB, ${m.threads} threads, after ${idleMs / 1000}s connected`,
        );
        return Promise.resolve();
      });
    }
  }
  for (const [i, taken] of samples.entries()) {
    const sorted = taken.toSorted((a, b) => a - b);
    console.log(
      `daemon idle RSS${label(i)}: best ${mib(sorted[0])} MiB, worst ${mib(sorted.at(-1)!)} MiB ` +
        `(${runs} runs, spread ${mib(sorted.at(-1)! - sorted[0])} MiB)`,
    );
  }

  if (values.heap) {
    const port = freePort();
    for (const [i, v8Flags] of variants.entries()) {
      await withDaemon(idle.env, v8Flags, [`--inspect=127.0.0.1:${port}`], async () => {
        const heap = await heapAfterGc(port);
        console.log(
          `daemon V8 heap after gc${label(i)}: used ${mib(heap.usedSize / 1024)} MiB of ${
            mib(heap.totalSize / 1024)
          } MiB (under the inspector)`,
        );
      });
    }
  }

  if (values.load) {
    // Its own host with the shell tool granted: granting tools changes what an idle daemon does
    // at start (it looks for a sandbox), so the idle runs above stay on a host without them.
    const worker = await enrolledHost(controller, hosts, ["--local-tools", "shell"]);
    const calls = Number(values.calls);
    const bulkMiB = Number(values["bulk-mib"]);
    for (const [i, v8Flags] of variants.entries()) {
      await withDaemon(worker.env, v8Flags, [], async (daemon) => {
        const l = await measureLoad(controller, daemon, worker.nodeId, { calls, bulkMiB });
        console.log(
          `load${label(i)}: ${calls} calls ${l.smallMs.toFixed(1)} ms each (daemon CPU ${
            l.smallCpuMs.toFixed(1)
          } ms); ${bulkMiB} MiB output at ${l.bulkMiBps.toFixed(1)} MiB/s (daemon CPU ${
            l.bulkCpuMs.toFixed(0)
          } ms); reconnect ${l.reconnectMs.toFixed(0)} ms (daemon CPU ${
            l.reconnectCpuMs.toFixed(0)
          } ms); VmRSS after ${mib(memory(daemon.child.pid).rss)} MiB`,
        );
      });
    }
  }
} finally {
  await Promise.all(hosts.map((h) => h.cleanup()));
  await controller.stop();
}
Deno.exit(0);

async function enrolledHost(controller: ControllerProcess, hosts: Host[], extra: string[]) {
  const host = await makeHost();
  hosts.push(host);
  const { token } = await controller.issueEnrollment("bench");
  const enroll = ["edge", "enroll", token, "--non-interactive", "--no-service", ...extra];
  const enrolled = await host.aegis(enroll);
  if (enrolled.code !== 0) throw new Error(enrolled.stderr);
  const nodeId = enrolled.stdout.match(/(n-[0-9a-f]+)/)![1];
  return { host, nodeId, env: { HOME: host.home, PATH: Deno.env.get("PATH") ?? "" } };
}

/** A daemon as selfCommand() starts it under `deno run`, connected and idle for --idle. */
async function withDaemon(
  env: Record<string, string>,
  v8Flags: string,
  extra: string[],
  measure: (daemon: Background) => Promise<void>,
): Promise<void> {
  const runtimeFlags = [...denoFlags, ...extra, ...(v8Flags ? [`--v8-flags=${v8Flags}`] : [])];
  const command = [Deno.execPath(), "run", "-A", "--quiet", ...runtimeFlags, AGENT_MAIN];
  const daemon = new Background(AGENT_MAIN, [], { ...env, ...daemonEnv }, [
    ...command,
    "edge",
    "run",
  ]);
  try {
    await daemon.waitFor(/stream connected/, 30_000);
    await new Promise((r) => setTimeout(r, idleMs));
    await measure(daemon);
  } finally {
    await daemon.stop();
  }
}

function memory(pid: number) {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const field = (name: string) => Number(status.match(new RegExp(`${name}:\\s+(\\d+)`))![1]);
  return {
    rss: field("VmRSS"),
    hwm: field("VmHWM"),
    anon: field("RssAnon"),
    file: field("RssFile"),
    threads: field("Threads"),
  };
}

/** Which variant a line is about, once there is more than one. */
function label(variant: number): string {
  return variants.length > 1 ? ` [${variants[variant] || "V8 defaults"}]` : "";
}

function mib(kib: number): string {
  return (kib / 1024).toFixed(1);
}
