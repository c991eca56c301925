// A race the real parts cannot be paused in: the Hello deadline ends a stream while its Hello is
// still being authenticated, and then the Hello turns out valid. The session here is a stand-in
// whose receive() is held open by the test; everything else is the real stream logic and gate.
import assert from "node:assert/strict";
import { serveEdgeStream } from "./edge_stream.ts";
import { StreamGate } from "../app/stream_gate.ts";

class Outbox {
  #done = false;
  #error?: Error;
  #wake?: () => void;
  close() {
    this.#done = true;
    this.#wake?.();
  }
  fail(error: Error) {
    this.#error = error;
    this.close();
  }
  [Symbol.asyncIterator](): AsyncIterator<never> {
    return {
      next: async () => {
        while (!this.#done) await new Promise<void>((resolve) => this.#wake = resolve);
        if (this.#error) throw this.#error;
        return { value: undefined, done: true };
      },
    };
  }
}

Deno.test("a Hello that completes after the stream ended neither trusts nor stays registered", async () => {
  let trusted = 0;
  let registered = false;
  let finishHello!: () => void;
  const helloStarted = Promise.withResolvers<void>();
  const session = {
    node: undefined as undefined | { nodeId: string },
    remoteAddr: "192.0.2.1",
    outbox: new Outbox(),
    async receive() {
      helloStarted.resolve();
      await new Promise<void>((resolve) => finishHello = resolve);
      session.node = { nodeId: "n-1" };
      registered = true; // as EdgeHub.register
    },
    fail(error: Error) {
      session.outbox.fail(error);
    },
    closed() {
      if (session.node) registered = false; // as EdgeSession.closed → hub.unregister
      return Promise.resolve();
    },
  };
  const gate = new StreamGate("test streams", 16, 1024);
  const requests = (async function* () {
    yield { envelope: {} } as never;
    await new Promise(() => {}); // the node says nothing more
  })();
  const stream = serveEdgeStream(
    { hub: { open: () => session } as never, admission: { gate, deadlineMs: 50 }, log: () => {} },
    requests,
    {
      remoteAddr: "192.0.2.1",
      trust: () => {
        trusted++;
        return () => trusted--;
      },
      aborted: false,
    },
  );
  const ended = stream.next().then(() => "ended", (error) => `failed: ${error.message}`);
  await helloStarted.promise;
  assert.match(await ended, /failed: .*valid Hello within 50 ms/);
  assert.equal(gate.size, 0, "the stream's slot was released when it ended");
  finishHello();
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(trusted, 0, "a dead stream's connection must not leave its address's count");
  assert.equal(registered, false, "the late Hello's registration was undone");
});
