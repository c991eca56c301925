// Controller RSS under the issue-9 bombs: two parallel gzip AttestNode requests carrying 512 MB
// of public_key each, then 5,000 empty ConnectEdge streams over 10 connections, then slow bodies
// (4 connections x 256 streams, each a gRPC frame claiming 1 MiB and all but one byte of it,
// never ended; --slow-connections). Loopback only,
// PGlite, about a minute at most; a controller past --ceiling-mib is killed, not waited on.
//
//   deno task bench:bomb                          # this tree's controller
//   deno task bench:bomb --root /tmp/aegis-base   # another checkout's (before/after)
import { parseArgs } from "node:util";
import { Background } from "../tests/support/processes.ts";
import { slowBodies } from "../tests/security/floods.ts";
import { connectH2, grpcFrame, gzipBomb, h2Call, RPC, rssMiB } from "../tests/security/wire.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    root: { type: "string", default: new URL("../", import.meta.url).pathname },
    "ceiling-mib": { type: "string", default: "4096" },
    streams: { type: "string", default: "5000" },
    "slow-connections": { type: "string", default: "4" },
  },
});
const ceiling = Number(values["ceiling-mib"]);
const root = values.root.endsWith("/") ? values.root : `${values.root}/`;

const dataDir = await Deno.makeTempDir({ prefix: "aegis-bomb-" });
await Deno.writeTextFile(
  `${dataDir}/aegis-config.yaml`,
  "cluster:\n  bind_address: 127.0.0.1\n",
);
const controller = new Background(`${root}controller/main.ts`, [
  "run",
  "--config",
  `${dataDir}/aegis-config.yaml`,
  "--data-dir",
  dataDir,
  "--port",
  "0",
], { HOME: dataDir });
const pid = controller.child.pid;

/** Runs `work` while sampling RSS; kills the controller if it passes the ceiling. */
async function measured(name: string, work: () => Promise<string>): Promise<void> {
  let peak = 0;
  let killed = false;
  const timer = setInterval(() => {
    try {
      peak = Math.max(peak, rssMiB(pid));
    } catch { /* gone */ }
    if (peak > ceiling && !killed) {
      killed = true;
      controller.stop("SIGKILL");
    }
  }, 50);
  const note = await work().catch((error) => `failed: ${error.message ?? error}`);
  await new Promise((resolve) => setTimeout(resolve, 3000));
  clearInterval(timer);
  const after = killed ? NaN : rssMiB(pid);
  console.log(
    `${name}: peak ${killed ? `> ${ceiling} (killed)` : peak.toFixed(0)} MiB, ` +
      `3 s later ${after.toFixed(0)} MiB; ${note}`,
  );
  if (killed) throw new Error("the controller passed the ceiling");
}

try {
  const port = Number((await controller.waitFor(/\{"port":(\d+)/, 30_000))[1]);
  await new Promise((resolve) => setTimeout(resolve, 2000));
  console.log(`# bomb bench: ${root}controller (PGlite), baseline ${rssMiB(pid).toFixed(0)} MiB`);
  const bomb = await gzipBomb(512 * 1024 * 1024);

  await measured("2 x gzip AttestNode (512 MB inside 510 KB)", async () => {
    const session = await connectH2(port);
    const frame = grpcFrame(bomb, true);
    const replies = await Promise.all([0, 1].map(() =>
      h2Call(session, RPC.attest, {
        headers: { "grpc-encoding": "gzip" },
        chunks: [frame],
        timeoutMs: 30_000,
      })
    ));
    session.destroy();
    return replies.map((r) => r.grpcMessage ?? r.error ?? `grpc-status ${r.grpcStatus}`).join(
      " | ",
    );
  });

  const total = Number(values.streams);
  await measured(`${total} empty ConnectEdge streams over 10 connections`, async () => {
    const sessions = await Promise.all(Array.from({ length: 10 }, () => connectH2(port)));
    const replies = sessions.flatMap((session) =>
      Array.from(
        { length: total / 10 },
        () => h2Call(session, RPC.connectEdge, { keepOpen: true, timeoutMs: 15_000 }),
      )
    );
    const settled = await Promise.all(replies);
    for (const session of sessions) session.destroy();
    const count = (p: (r: (typeof settled)[number]) => boolean) => settled.filter(p).length;
    return `${count((r) => r.error === "timeout")} still open after 15 s, ` +
      `${count((r) => r.grpcStatus === 8)} refused (RESOURCE_EXHAUSTED), ` +
      `${count((r) => r.grpcStatus === 16)} ended by the Hello deadline, ` +
      `${count((r) => r.error !== undefined && r.error !== "timeout")} reset by HTTP/2 limits`;
  });

  const slow = Number(values["slow-connections"]);
  await measured(`slow bodies: ${slow} connections x 256 streams x (1 MiB - 1 byte)`, async () => {
    const attack = await slowBodies(port, { connections: slow, streams: 256 });
    const started = Date.now();
    while (attack.closed < slow && Date.now() - started < 20_000) {
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    const note = `${(attack.sent / 1048576).toFixed(0)} MiB sent, ` +
      `${attack.closed}/${slow} connections cut by the server after ${Date.now() - started} ms`;
    attack.stop();
    return note;
  });
} finally {
  await controller.stop();
  await Deno.remove(dataDir, { recursive: true }).catch(() => {});
}
