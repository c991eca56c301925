// Issue 9, item 9: streams and sockets that never authenticate are capped and timed out. Many
// empty ConnectEdge streams from one address: all but a few are refused at once (RESOURCE_
// EXHAUSTED), the rest end at the Hello deadline; a socket that sends nothing, half the HTTP/2
// preface, or a preface and no stream, is closed by the server.
import { startControllerProcess } from "../support/controller.ts";
import { TEST_DB_KIND } from "../support/db.ts";
import { halfOpenSockets, unauthenticatedStreams } from "./floods.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test(
  `[${TEST_DB_KIND}] unauthenticated streams are capped per address and ended by the Hello deadline`,
  opts,
  async () => {
    const controller = await startControllerProcess({
      yaml: "limits:\n  edge_auth_deadline_ms: 3000\n  unauthenticated_streams_per_address: 16",
    });
    try {
      await unauthenticatedStreams(controller.port);
    } finally {
      await controller.stop();
    }
  },
);

Deno.test(
  `[${TEST_DB_KIND}] silent, half-preface and stream-less connections are closed by the server`,
  opts,
  async () => {
    const controller = await startControllerProcess({
      yaml: "limits:\n  handshake_timeout_ms: 2000\n  h2_first_stream_timeout_ms: 3000",
    });
    try {
      await halfOpenSockets(controller.port);
    } finally {
      await controller.stop();
    }
  },
);
