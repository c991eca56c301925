// Bounds on what a node declares about itself in Hello. Labels and capabilities are stored in
// the node's record and shown in every host listing, so an unbounded Hello would let one node
// fill the database and every operator's screen. The bounds match what the daemon's own config
// allows (shared/config/edge_config.ts), with room to spare; a Hello past them ends the stream
// with INVALID_ARGUMENT, which the daemon reports and does not retry.
import type { Hello } from "../../shared/gen/aegis/edge/v1/node_cluster_pb.ts";
import { AegisError } from "../../shared/errors.ts";
import { unprintable } from "../../shared/printable.ts";

export const HELLO_LIMITS = {
  labels: 64,
  labelKeyChars: 63,
  labelValueChars: 256,
  localTools: 128,
  mountPoints: 64,
  /** One local tool name or mount point path (PATH_MAX on Linux). */
  listItemChars: 4096,
  /** os, arch, hostname, agent version. */
  fieldChars: 255,
  /** Labels and capabilities together, in UTF-8 bytes. */
  totalBytes: 32 * 1024,
  /** The daemon's config allows no more; it sets the silence watchdog (three intervals). */
  heartbeatIntervalSecs: 3600,
} as const;

/** Throws INVALID_ARGUMENT naming the first bound the Hello exceeds. */
export function checkHello(hello: Hello): void {
  const L = HELLO_LIMITS;
  const labels = Object.entries(hello.labels);
  atMost(labels.length, L.labels, "labels");
  for (const [key, value] of labels) {
    if (key.length === 0) refuse("a label key is empty");
    atMost(key.length, L.labelKeyChars, `characters in label key ${preview(key)}`);
    atMost(value.length, L.labelValueChars, `characters in the value of label ${preview(key)}`);
  }
  const caps = hello.capabilities;
  const tools = caps?.localTools ?? [];
  const mounts = caps?.mountPoints ?? [];
  atMost(tools.length, L.localTools, "local tools");
  atMost(mounts.length, L.mountPoints, "mount points");
  for (const item of [...tools, ...mounts]) {
    atMost(item.length, L.listItemChars, `characters in ${preview(item)}`);
  }
  const fields = {
    os: caps?.os,
    arch: caps?.arch,
    hostname: caps?.hostname,
    agent_version: caps?.agentVersion,
  };
  for (const [name, value] of Object.entries(fields)) {
    atMost(value?.length ?? 0, L.fieldChars, `characters in ${name}`);
  }
  atMost(helloBytes(hello), L.totalBytes, "bytes of labels and capabilities");
  for (const text of helloStrings(hello)) {
    const bad = unprintable(text);
    if (bad) refuse(`${preview(text)} holds the control character ${bad}`);
  }
  atMost(hello.heartbeatIntervalSecs, L.heartbeatIntervalSecs, "heartbeat interval seconds");
}

function helloBytes(hello: Hello): number {
  const encoder = new TextEncoder();
  return helloStrings(hello).reduce((sum, s) => sum + encoder.encode(s).length, 0);
}

function helloStrings(hello: Hello): string[] {
  const caps = hello.capabilities;
  return [
    ...Object.entries(hello.labels).flat(),
    ...(caps?.localTools ?? []),
    ...(caps?.mountPoints ?? []),
    caps?.os ?? "",
    caps?.arch ?? "",
    caps?.hostname ?? "",
    caps?.agentVersion ?? "",
  ];
}

function atMost(actual: number, limit: number, what: string): void {
  if (actual > limit) refuse(`${actual} ${what} (at most ${limit})`);
}

function refuse(detail: string): never {
  throw new AegisError("INVALID_ARGUMENT", `Hello refused: ${detail}`, {
    hint: "Trim node.labels, local_tools or mount_points in ~/.aegis/edge/aegis-config.yaml.",
  });
}

/** Enough of an oversized string to recognise it, never all of it. */
function preview(s: string): string {
  const shown = s.replace(/[\p{Cc}\p{Cf}]/gu, "\uFFFD");
  return JSON.stringify(shown.length > 40 ? `${shown.slice(0, 40)}…` : shown);
}
