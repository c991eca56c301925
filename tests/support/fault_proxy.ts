// A loopback TCP proxy that puts network faults between daemons and the controller: everything a
// daemon sends and receives crosses it, and a test switches what it does while streams are live.
//
// Modes (they apply to existing and new connections alike):
// - pass: bytes flow both ways as they arrive.
// - blackhole: both sockets stay open and nothing flows either way. The proxy stops reading
//   (pauses) rather than reading and dropping: a path that heals before TCP gives up delivers
//   what was retransmitted, so held bytes (and a FIN or reset that came meanwhile) go on after
//   heal, in order. Dropping bytes instead would cut HTTP/2 frames in half, and a connection
//   that survived would then fail on garbage no real blackhole produces. The kernel buffers
//   behind a paused socket fill and then the sender's writes block, as with unacked data.
// - refuse: new connections are reset as soon as they are accepted; existing ones go on as in
//   pass. (The listener stays open so the port stays ours: closing it would let another process
//   on this machine take the port before we listen again.)
// - latency(ms): every chunk is delivered `ms` after it arrived, each way, order kept.
// One-shots: resetAll() resets every current connection (TCP RST to both peers);
// cutMidMessage() forwards only the first half of the next chunk from the target to a client and
// then resets both sockets of that connection.
import net from "node:net";
import type { Buffer } from "node:buffer";

export type FaultMode = "pass" | "blackhole" | "refuse" | "latency";

export interface FaultProxyStats {
  /** Connections accepted by the listener (refused ones included). */
  accepted: number;
  /** Connections reset on arrival (refuse mode, or no target yet). */
  refused: number;
  /** Connections with at least one socket still open. */
  live: number;
  /** Bytes forwarded client → target. */
  bytesUp: number;
  /** Bytes forwarded target → client. */
  bytesDown: number;
  /** Connections reset by resetAll() or cutMidMessage(). */
  resets: number;
}

export interface Cut {
  /** Bytes of the cut chunk that reached the client. */
  forwarded: number;
  /** Size of the chunk that was cut. */
  of: number;
}

/** What a pipe delivers after its data: a clean end of stream, or a reset. */
type Terminal = "fin" | "rst";

/** How long a cut connection lives after the half chunk went out. */
const CUT_RESET_DELAY_MS = 50;
/** Chunks queued beyond this pause the reading side until the writing side catches up. */
const MAX_QUEUED_CHUNKS = 64;

export class FaultProxy {
  readonly #server: net.Server;
  readonly #connections = new Set<Connection>();
  #target?: { host: string; port: number };
  #mode: FaultMode = "pass";
  #latencyMs = 0;
  #cut?: (cut: Cut | undefined) => void;
  #stopped = false;
  readonly stats: FaultProxyStats = {
    accepted: 0,
    refused: 0,
    live: 0,
    bytesUp: 0,
    bytesDown: 0,
    resets: 0,
  };

  private constructor(server: net.Server, readonly port: number) {
    this.#server = server;
    server.on("connection", (socket) => this.#accept(socket));
  }

  /** Listens on 127.0.0.1 (a free port); `targetPort` may be given now or with setTarget(). */
  static async start(targetPort?: number): Promise<FaultProxy> {
    // allowHalfOpen: a client's FIN is passed on as a FIN, not turned into a full close.
    const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => {
        server.off("error", reject);
        resolve();
      });
    });
    // A listener error after start (none is expected on loopback) must not be uncaught.
    server.on("error", () => {});
    const proxy = new FaultProxy(server, (server.address() as net.AddressInfo).port);
    if (targetPort !== undefined) proxy.setTarget(targetPort);
    return proxy;
  }

  /** What a daemon or token names to come through the proxy (plaintext). */
  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get mode(): FaultMode {
    return this.#mode;
  }

  get latencyMs(): number {
    return this.#latencyMs;
  }

  /** Where new connections go; existing ones keep their target. */
  setTarget(port: number, host = "127.0.0.1"): void {
    this.#target = { host, port };
  }

  pass(): void {
    this.#setMode("pass", 0);
  }

  blackhole(): void {
    this.#setMode("blackhole", 0);
  }

  refuse(): void {
    this.#setMode("refuse", 0);
  }

  latency(ms: number): void {
    if (!(ms >= 0)) throw new RangeError(`latency must be >= 0 ms, got ${ms}`);
    this.#setMode("latency", ms);
  }

  /** Resets both sockets of every current connection; returns how many were reset. */
  resetAll(): number {
    const all = [...this.#connections];
    for (const connection of all) connection.reset();
    this.stats.resets += all.length;
    return all.length;
  }

  /**
   * Arms a one-shot cut: the next chunk from the target toward a client is forwarded only in
   * part (its first half), then both sockets of that connection are reset. Resolves when that
   * happened, or with undefined when the proxy stops first.
   */
  cutMidMessage(): Promise<Cut | undefined> {
    if (this.#cut) throw new Error("a cut is already armed");
    return new Promise((resolve) => this.#cut = resolve);
  }

  /** Takes the armed cut, if any (the connection that calls this performs it). */
  takeCut(): ((cut: Cut | undefined) => void) | undefined {
    const cut = this.#cut;
    this.#cut = undefined;
    return cut;
  }

  /** Stops listening and closes every socket; resolves once all are closed. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.takeCut()?.(undefined);
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    const connections = [...this.#connections];
    for (const connection of connections) connection.reset();
    await Promise.all([closed, ...connections.map((c) => c.closed)]);
  }

  // Internal: the per-connection code reads these.
  get flowing(): boolean {
    return this.#mode !== "blackhole";
  }

  count(direction: "up" | "down", bytes: number): void {
    if (direction === "up") this.stats.bytesUp += bytes;
    else this.stats.bytesDown += bytes;
  }

  countReset(): void {
    this.stats.resets++;
  }

  forget(connection: Connection): void {
    if (this.#connections.delete(connection)) this.stats.live = this.#connections.size;
  }

  #setMode(mode: FaultMode, latencyMs: number): void {
    this.#mode = mode;
    this.#latencyMs = latencyMs;
    // Existing connections pick the new mode up at once: held data flows on heal.
    for (const connection of this.#connections) connection.kick();
  }

  #accept(client: net.Socket): void {
    this.stats.accepted++;
    client.on("error", () => {});
    const target = this.#target;
    if (this.#stopped || this.#mode === "refuse" || !target) {
      this.stats.refused++;
      rst(client);
      return;
    }
    const upstream = net.connect({ host: target.host, port: target.port, allowHalfOpen: true });
    const connection = new Connection(this, client, upstream);
    this.#connections.add(connection);
    this.stats.live = this.#connections.size;
  }
}

/** One proxied connection: a client socket, its upstream socket, and a pipe each way. */
class Connection {
  readonly up: Pipe;
  readonly down: Pipe;
  readonly closed: Promise<void>;

  constructor(
    readonly proxy: FaultProxy,
    readonly client: net.Socket,
    readonly upstream: net.Socket,
  ) {
    // Errors are expected here (resets, refused upstream); each one ends in a 'close' below.
    upstream.on("error", () => {});
    this.up = new Pipe(this, client, upstream, "up");
    this.down = new Pipe(this, upstream, client, "down");
    this.closed = Promise.all([closedOf(client), closedOf(upstream)]).then(() => {
      proxy.forget(this);
    });
    // The client was paused on connect (pauseOnConnect), so nothing was read before its pipe
    // was attached; both sockets now read or not as the mode says.
    this.up.sync();
    this.down.sync();
  }

  /** Applies a mode change: held data flows on heal, reading stops in a blackhole. */
  kick(): void {
    this.up.pump();
    this.down.pump();
  }

  reset(): void {
    this.up.abandon();
    this.down.abandon();
    rst(this.client);
    rst(this.upstream);
  }
}

/** One direction: reads `from`, holds chunks as the mode says, writes them to `to`. */
class Pipe {
  readonly #queue: Array<{ chunk: Buffer; at: number }> = [];
  #terminal?: Terminal;
  #done = false;
  #waitingDrain = false;
  #timer?: ReturnType<typeof setTimeout>;

  constructor(
    readonly connection: Connection,
    readonly from: net.Socket,
    readonly to: net.Socket,
    readonly direction: "up" | "down",
  ) {
    from.on("data", (chunk: Buffer) => {
      // Bytes for a peer that has closed its socket get a reset, as its kernel would send.
      if (this.#done && this.to.destroyed) rst(this.from);
      if (this.#done || this.#terminal) return;
      this.#queue.push({ chunk, at: performance.now() });
      this.pump();
    });
    from.on("end", () => this.#finish("fin"));
    // A socket that closes without having ended its stream (reset, error, destroyed) is passed
    // on as a reset; a socket that ended first is passed on as its FIN (above).
    from.on("close", () => this.#finish("rst"));
    // Nothing more can be written to a closed socket: what was held for it is dropped.
    to.on("close", () => this.abandon());
  }

  #finish(how: Terminal): void {
    if (this.#terminal || this.#done) return;
    this.#terminal = how;
    this.pump();
  }

  /** Drops what is held and stops; the sockets are someone else's to close. */
  abandon(): void {
    this.#done = true;
    this.#queue.length = 0;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  pump(): void {
    if (this.#done) return this.sync();
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const proxy = this.connection.proxy;
    while (proxy.flowing && !this.#waitingDrain && !this.#done) {
      const head = this.#queue[0];
      if (!head) {
        if (this.#terminal) this.#deliverTerminal(this.#terminal);
        break;
      }
      const wait = head.at + proxy.latencyMs - performance.now();
      if (wait > 0) {
        this.#timer = setTimeout(() => this.pump(), wait);
        break;
      }
      this.#queue.shift();
      if (this.direction === "down") {
        const cut = proxy.takeCut();
        if (cut) {
          const forwarded = Math.floor(head.chunk.length / 2);
          this.connection.up.abandon();
          this.abandon();
          proxy.count("down", forwarded);
          proxy.countReset();
          // The reset follows once the half is in the kernel, and a moment later, so the client
          // reads the half before the reset: a message cut off mid-frame, then a dead peer.
          const reset = () => setTimeout(() => this.connection.reset(), CUT_RESET_DELAY_MS);
          if (this.to.destroyed) reset();
          else this.to.write(head.chunk.subarray(0, forwarded), reset);
          cut({ forwarded, of: head.chunk.length });
          return;
        }
      }
      if (this.to.destroyed) {
        this.abandon();
        break;
      }
      proxy.count(this.direction, head.chunk.length);
      if (!this.to.write(head.chunk)) {
        this.#waitingDrain = true;
        this.to.once("drain", () => {
          this.#waitingDrain = false;
          this.pump();
        });
      }
    }
    this.sync();
  }

  /** Reads from `from` only while the mode lets data through and little is held. */
  sync(): void {
    if (this.from.destroyed) return;
    const proxy = this.connection.proxy;
    // Once done, what still arrives goes nowhere; it is read so the socket sees its end.
    const flow = proxy.flowing &&
      (this.#done || (!this.#waitingDrain && this.#queue.length < MAX_QUEUED_CHUNKS));
    if (flow) this.from.resume();
    else this.from.pause();
  }

  #deliverTerminal(how: Terminal): void {
    this.#done = true;
    if (this.to.destroyed) return;
    if (how === "fin") this.to.end();
    else rst(this.to);
  }
}

/** Sends a TCP RST (SO_LINGER 0) where the runtime can, else closes. Never throws. */
function rst(socket: net.Socket): void {
  if (socket.destroyed) return;
  try {
    socket.resetAndDestroy();
  } catch {
    socket.destroy();
  }
}

function closedOf(socket: net.Socket): Promise<void> {
  return new Promise((resolve) => {
    if (socket.closed) resolve();
    else socket.once("close", () => resolve());
  });
}
