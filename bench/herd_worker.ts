// One worker process of the herd bench: runs the real daemon (runDaemon) for each host directory
// it is given, all in this process, and reports to the parent on stdout, as JSON lines every
// 250 ms: how many of its daemons hold a stream now, and its stream attempts per wall-clock
// second (an attempt is counted when it ends: connected, or failed; a refused connection ends at
// once, so that is when it was made).
//
//   deno run -A bench/herd_worker.ts <file with a JSON array of HOME directories>
import { runDaemon } from "../agent/daemon/daemon.ts";
import { edgePaths } from "../agent/state/paths.ts";

export interface WorkerReport {
  /** Daemons of this worker with a stream up. */
  connected: number;
  /** [epoch second, attempts that ended in it] since the previous report. */
  attempts: [number, number][];
  /** GOAWAYs received so far. */
  goaways: number;
  /** Daemons that stopped (refused by the controller, or a bug): should stay 0. */
  exited: number;
  /** The last such failure, if any. */
  lastExit?: string;
  /** Failed stream attempts so far by reason (its first words, digits folded). */
  reasons: Record<string, number>;
}

/** "stream to host:1 failed: unavailable: connect ECONNREFUSED 127.0.0.1:4000" → a short key. */
export function failureReason(message: string): string {
  const reason = message.slice(message.indexOf(" failed: ") + " failed: ".length);
  return reason.replace(/\d+/g, "N").slice(0, 60);
}

if (import.meta.main) {
  const homes: string[] = JSON.parse(await Deno.readTextFile(Deno.args[0]));
  const stop = new AbortController();
  Deno.addSignalListener("SIGTERM", () => stop.abort());

  const up = new Set<number>();
  let pending = new Map<number, number>();
  let goaways = 0;
  let exited = 0;
  let lastExit: string | undefined;
  const reasons: Record<string, number> = {};

  const attempt = () => {
    const second = Math.floor(Date.now() / 1000);
    pending.set(second, (pending.get(second) ?? 0) + 1);
  };

  const runs = homes.map((home, index) =>
    runDaemon({
      paths: edgePaths(home),
      signal: stop.signal,
      log: (message) => {
        if (message.startsWith("✔ stream connected")) {
          attempt();
          up.add(index);
        } else if (message.startsWith("stream to ") && message.includes(" failed: ")) {
          attempt();
          up.delete(index);
          const reason = failureReason(message);
          reasons[reason] = (reasons[reason] ?? 0) + 1;
        } else if (message.startsWith("controller says goaway")) {
          goaways++;
          up.delete(index);
        } else if (message.startsWith("stream to ") && message.endsWith(" ended")) {
          up.delete(index);
        }
      },
    }).catch((error) => {
      exited++;
      lastExit = `${home}: ${(error as Error).message}`;
      up.delete(index);
    })
  );

  const encoder = new TextEncoder();
  const report = () => {
    const attempts = [...pending];
    pending = new Map();
    const line: WorkerReport = {
      connected: up.size,
      attempts,
      goaways,
      exited,
      lastExit,
      reasons,
    };
    Deno.stdout.writeSync(encoder.encode(JSON.stringify(line) + "\n"));
  };
  const ticker = setInterval(report, 250);

  await Promise.all(runs);
  clearInterval(ticker);
  report();
  Deno.exit(0);
}
