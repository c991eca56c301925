// The V8 heap of another Deno process started with --inspect: a full GC first, then the live
// size, through the Chrome DevTools Protocol (no heap snapshot: that would cost more than it
// measures).
export interface HeapUsage {
  usedSize: number;
  totalSize: number;
}

export async function heapAfterGc(port: number): Promise<HeapUsage> {
  const targets = await (await fetch(`http://127.0.0.1:${port}/json/list`)).json();
  const socket = new WebSocket(targets[0].webSocketDebuggerUrl);
  await new Promise((resolve, reject) => {
    socket.onopen = resolve;
    socket.onerror = reject;
  });
  let next = 0;
  const pending = new Map<number, (result: unknown) => void>();
  socket.onmessage = (event) => {
    const message = JSON.parse(event.data);
    pending.get(message.id)?.(message.result);
    pending.delete(message.id);
  };
  const call = (method: string) =>
    new Promise<unknown>((resolve) => {
      const id = ++next;
      pending.set(id, resolve);
      socket.send(JSON.stringify({ id, method }));
    });
  try {
    await call("HeapProfiler.collectGarbage");
    return await call("Runtime.getHeapUsage") as HeapUsage;
  } finally {
    socket.close();
  }
}
