// One ConnectEdge stream from the daemon's side: wait for the server's nonce, say Hello in a
// signed envelope, then send sealed messages with strictly increasing sequence numbers.
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  type EdgeDownstream,
  type EdgeUpstream,
  EdgeUpstreamSchema,
  type HelloAck,
} from "../../shared/gen/aegis/edge/v1/node_cluster_pb.ts";
import { AsyncQueue } from "../../shared/async_queue.ts";
import { AegisError } from "../../shared/errors.ts";
import { type PayloadBody, sealEnvelope } from "../../shared/crypto/envelope.ts";
import { fromConnectError } from "../../shared/rpc_errors.ts";
import type { Endpoint } from "../../shared/endpoint.ts";
import type { NodePrivateKey } from "../../shared/crypto/node_key.ts";
import { VERSION } from "../../shared/version.ts";
import type { NodeClient } from "../client/node_client.ts";
import type { EdgeConfig } from "../../shared/config/edge_config.ts";

export interface StreamIdentity {
  nodeId: string;
  key: NodePrivateKey;
  token: string;
}

/** What the daemon tells the controller in Hello about how it fared before this stream. */
export interface HelloReport {
  lastError?: string;
  lastErrorAt?: Date;
  /** Connection attempts that failed in a row before this one. */
  failures: number;
}

export class EdgeConnection {
  readonly #upstream = new AsyncQueue<EdgeUpstream>();
  readonly #abort = new AbortController();
  #downstream!: AsyncIterator<EdgeDownstream>;
  #nonce: Uint8Array = new Uint8Array();
  #seq = 0n;
  #identity: StreamIdentity;
  /** What open() waits for: a timeout says which (a controller too busy to accept, or to check). */
  #waitingFor: "no stream opened" | "Hello not answered" | undefined = "no stream opened";
  /** Set when the path under the stream broke: messages() ends with it instead of quietly. */
  #broken?: AegisError;
  helloAck!: HelloAck;

  private constructor(readonly endpoint: Endpoint, identity: StreamIdentity) {
    this.#identity = identity;
  }

  static async open(
    client: NodeClient,
    endpoint: Endpoint,
    identity: StreamIdentity,
    config: EdgeConfig,
    hostname: string,
    openTimeoutMs = 15_000,
    report?: HelloReport,
  ): Promise<EdgeConnection> {
    const connection = new EdgeConnection(endpoint, identity);
    const timer = setTimeout(() => connection.#abort.abort(), openTimeoutMs);
    try {
      await connection.#start(client, config, hostname, report);
      return connection;
    } catch (error) {
      const typed = connection.#typed(error);
      connection.close();
      throw typed;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Seals and queues a message; false when the stream is already closed. */
  send(body: PayloadBody): boolean {
    this.#seq += 1n;
    const envelope = sealEnvelope({
      key: this.#identity.key,
      token: this.#identity.token,
      nodeId: this.#identity.nodeId,
      streamNonce: this.#nonce,
      seq: this.#seq,
      body,
    });
    return this.#upstream.push(create(EdgeUpstreamSchema, { envelope }));
  }

  /** After a rotation or refresh: later envelopes carry the new key and token. */
  useIdentity(identity: StreamIdentity): void {
    this.#identity = identity;
  }

  /** Messages from the controller until the stream ends; failures arrive typed. */
  async *messages(): AsyncGenerator<EdgeDownstream> {
    try {
      while (true) {
        const next = await this.#downstream.next();
        if (next.done) break;
        yield next.value;
      }
    } catch (error) {
      if (this.#broken) throw this.#broken;
      if (this.#abort.signal.aborted) return;
      throw this.#typed(error);
    }
    if (this.#broken) throw this.#broken;
  }

  /** The connection under the stream died: end the stream now, with `reason` as its error. */
  fail(reason: AegisError): void {
    this.#broken ??= reason;
    this.close();
  }

  close(): void {
    this.#upstream.close();
    this.#abort.abort();
  }

  async #start(
    client: NodeClient,
    config: EdgeConfig,
    hostname: string,
    report: HelloReport | undefined,
  ): Promise<void> {
    const responses = client.connectEdge(this.#upstream, {
      signal: this.#abort.signal,
      timeoutMs: 0,
    });
    this.#downstream = responses[Symbol.asyncIterator]();
    const opened = await this.#expect("opened");
    this.#waitingFor = "Hello not answered";
    this.#nonce = opened.streamNonce;
    this.send({
      case: "hello",
      value: {
        capabilities: {
          os: Deno.build.os,
          arch: Deno.build.arch,
          localTools: config.local_tools,
          mountPoints: config.mount_points,
          hostname,
          agentVersion: VERSION,
          maxConcurrentCalls: config.edge.max_concurrent_calls,
        },
        labels: config.node.labels,
        heartbeatIntervalSecs: config.edge.heartbeat_interval_secs,
        report: report && {
          lastError: report.lastError ?? "",
          lastErrorAt:
            report.lastError && report.lastErrorAt && !isNaN(report.lastErrorAt.getTime())
              ? timestampFromDate(report.lastErrorAt)
              : undefined,
          failures: Math.min(report.failures, 0xffff_ffff),
        },
      } as never,
    });
    this.helloAck = await this.#expect("helloAck");
    this.#waitingFor = undefined;
  }

  async #expect<K extends "opened" | "helloAck">(
    kind: K,
  ): Promise<Extract<EdgeDownstream["body"], { case: K }>["value"]> {
    const next = await this.#downstream.next();
    if (next.done) {
      throw new AegisError(
        "UNREACHABLE",
        `the stream to ${this.endpoint.display} closed before ${kind}`,
      );
    }
    const body = next.value.body;
    if (body.case === "goaway") {
      throw new AegisError(
        "UNREACHABLE",
        `${this.endpoint.display} asked us to go away: ${body.value.message}`,
      );
    }
    if (body.case !== kind) {
      throw new AegisError(
        "INTERNAL",
        `expected ${kind} from ${this.endpoint.display}, got ${body.case}`,
      );
    }
    return body.value as never;
  }

  #typed(error: unknown): AegisError {
    if (this.#abort.signal.aborted && !(error instanceof AegisError)) {
      const what = this.#waitingFor ? ` (${this.#waitingFor})` : "";
      return new AegisError(
        "UNREACHABLE",
        `no answer from ${this.endpoint.display} in time${what}`,
      );
    }
    return fromConnectError(error, this.endpoint.display);
  }
}
