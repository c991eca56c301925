// Carries out a bootstrap plan: local files first (each written atomically with its mode), then
// AttestNode → ChallengeNode, then node.token, the service and a first stream. A failure at any
// step leaves what was already written in a state the next run can reuse.
import { hostname } from "node:os";
import { resolve } from "node:path";
import { parse } from "yaml";
import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { NodeRole } from "../../shared/gen/aegis/edge/v1/node_cluster_pb.ts";
import { AegisError, type ErrorCode } from "../../shared/errors.ts";
import { ensureDir, readTextIfExists, writeFileAtomic } from "../../shared/fs/atomic.ts";
import { NodePrivateKey } from "../../shared/crypto/node_key.ts";
import { challengeBytes } from "../../shared/crypto/signed_bytes.ts";
import { type EdgeConfig, parseEdgeConfig } from "../../shared/config/edge_config.ts";
import { type Endpoint, parseEndpointList } from "../../shared/endpoint.ts";
import type { EnrollmentClaims } from "../../shared/tokens/claims.ts";
import { decodeNodeToken } from "../../shared/tokens/claims.ts";
import type { EdgePaths } from "../state/paths.ts";
import { callNode, type NodeClient } from "../client/node_client.ts";
import { EdgeConnection } from "../daemon/connection.ts";
import type { HostFacts } from "./inspect.ts";
import { configTemplate, mergeConfig, renderConfig } from "./template.ts";
import type { Plan, PlannedArtifact } from "./plan.ts";

const SPENT = new Set<ErrorCode>([
  "ENROLL_TOKEN_EXPIRED",
  "ENROLL_TOKEN_REDEEMED",
  "ENROLL_TOKEN_MALFORMED",
  "ENROLL_TOKEN_WRONG_CONTROLLER",
]);

export interface Step {
  verb:
    | "Created"
    | "Verified"
    | "Fixed"
    | "Wrote"
    | "Kept"
    | "Merged"
    | "Removed"
    | "Started"
    | "Skipped";
  path: string;
  note?: string;
}

export interface ServiceStep {
  /** Installs (and starts, when possible) the service; returns steps and advice to print. */
  install(): Promise<{ steps: Step[]; advice: string[]; started: boolean }>;
}

export interface EnrollResult {
  steps: Step[];
  nodeId: string;
  tenantId: string;
  nodeName: string;
  endpoint: Endpoint;
  tokenExpiresAt: Date;
  reused: boolean;
  streamConnected: boolean;
  serviceStarted: boolean;
  advice: string[];
}

export interface ApplyInput {
  plan: Plan;
  paths: EdgePaths;
  facts: HostFacts;
  token: string;
  claims: EnrollmentClaims;
  endpoint: Endpoint;
  client: NodeClient;
  service?: ServiceStep;
  /** The deliberate local_tools grant; undefined keeps what an existing config says. */
  localTools?: string[];
  /** A CA to trust for this controller from now on (--ca-file), kept in the config. */
  caFile?: string;
  log: (line: string) => void;
}

export async function applyPlan(input: ApplyInput): Promise<EnrollResult> {
  const { paths, plan } = input;
  const steps: Step[] = [];
  const action = (id: PlannedArtifact["artifact"]) =>
    plan.artifacts.find((a) => a.artifact === id)!.action;

  await ensurePrivateDir(paths.dir, action("config_dir"), steps);
  const config = await writeConfig(input, action("config"), steps);

  const key = plan.existingKey ?? NodePrivateKey.generate();
  if (plan.existingKey) {
    steps.push({ verb: "Kept", path: paths.key });
  } else {
    await writeFileAtomic(paths.key, key.toPem(), { mode: 0o600 });
    await writeFileAtomic(
      paths.publicKey,
      key.publicKey.toOpenSsh(`aegis-edge@${input.facts.hostname}`) + "\n",
      {
        mode: 0o644,
      },
    );
    steps.push({ verb: "Wrote", path: paths.key, note: "0600" }, {
      verb: "Wrote",
      path: paths.publicKey,
    });
  }

  let enrolled: {
    nodeId: string;
    tenantId: string;
    nodeName: string;
    token: string;
    expiresAt: Date;
  };
  if (plan.existingToken) {
    const claims = decodeNodeToken(plan.existingToken);
    enrolled = {
      nodeId: claims.sub,
      tenantId: claims.tenant_id,
      nodeName: config.node.name ?? input.facts.hostname,
      token: plan.existingToken,
      expiresAt: new Date(claims.exp * 1000),
    };
    steps.push({ verb: "Kept", path: paths.nodeToken });
  } else if (plan.trusted) {
    enrolled = await redeem(input, key);
    await writeFileAtomic(paths.nodeToken, enrolled.token + "\n", { mode: 0o600 });
    steps.push({ verb: "Wrote", path: paths.nodeToken, note: "0600" });
  } else {
    // Kept on disk until redeemed, so an interrupted enrollment can be retried with it.
    await writeFileAtomic(paths.enrollmentToken, input.token.trim() + "\n", { mode: 0o600 });
    enrolled = await redeem(input, key).catch(async (error) => {
      // A token the controller refused for good is of no use to a retry: do not keep it.
      if (error instanceof AegisError && SPENT.has(error.code)) {
        await Deno.remove(paths.enrollmentToken).catch(() => {});
      }
      throw error;
    });
    await writeFileAtomic(paths.nodeToken, enrolled.token + "\n", { mode: 0o600 });
    steps.push({ verb: "Wrote", path: paths.nodeToken, note: "0600" });
    await Deno.remove(paths.enrollmentToken).catch(() => {});
  }

  await ensurePrivateDir(paths.secrets, action("secrets"), steps);

  let advice: string[] = [];
  let serviceStarted = false;
  if (input.service) {
    const report = await input.service.install();
    steps.push(...report.steps);
    advice = report.advice;
    serviceStarted = report.started;
  }

  const streamConnected = await checkStream(input, config, key, enrolled);
  return {
    steps,
    nodeId: enrolled.nodeId,
    tenantId: enrolled.tenantId,
    nodeName: enrolled.nodeName,
    endpoint: input.endpoint,
    tokenExpiresAt: enrolled.expiresAt,
    reused: Boolean(plan.existingToken),
    streamConnected,
    serviceStarted,
    advice,
  };
}

async function redeem(input: ApplyInput, key: NodePrivateKey) {
  const { client, endpoint, facts } = input;
  const challenge = await callNode(endpoint, () =>
    client.attestNode({
      role: NodeRole.EDGE,
      publicKey: key.publicKey.bytes,
      hostname: facts.hostname,
      os: facts.os,
      arch: facts.arch,
      clientTime: timestampFromDate(new Date()),
    }));
  const signature = key.sign(
    challengeBytes(challenge.challengeId, challenge.nonce, key.publicKey.bytes),
  );
  const response = await callNode(endpoint, () =>
    client.challengeNode({
      challengeId: challenge.challengeId,
      signature,
      proof: input.plan.trusted
        ? { case: "trusted", value: true }
        : { case: "bootstrapProof", value: input.token.trim() },
    }));
  return {
    nodeId: response.nodeId,
    tenantId: response.tenantId,
    nodeName: response.nodeName,
    token: response.nodeSecurityToken,
    expiresAt: response.tokenExpiresAt ? timestampDate(response.tokenExpiresAt) : new Date(0),
  };
}

/** Opens the stream once, so the output can say it works (the service keeps it open after). */
async function checkStream(
  input: ApplyInput,
  config: EdgeConfig,
  key: NodePrivateKey,
  enrolled: { nodeId: string; token: string },
): Promise<boolean> {
  try {
    const connection = await EdgeConnection.open(
      input.client,
      input.endpoint,
      {
        nodeId: enrolled.nodeId,
        key,
        token: enrolled.token,
      },
      config,
      hostname(),
    );
    connection.close();
    return true;
  } catch (error) {
    input.log(`stream check failed: ${(error as Error).message}`);
    return false;
  }
}

async function writeConfig(input: ApplyInput, action: string, steps: Step[]): Promise<EdgeConfig> {
  const { paths, facts, claims } = input;
  // The token's cep may list several relays; the host keeps them all for failover.
  const endpoints = parseEndpointList(claims.cep).map((e) => e.raw);
  const template = configTemplate(facts, endpoints, claims.name, input.localTools);
  const existingText = await readTextIfExists(paths.config);
  let config: EdgeConfig;
  let verb: Step["verb"] = "Wrote";
  if (action === "use_existing" && existingText !== undefined) {
    config = parseEdgeConfig(existingText, paths.config);
    verb = "Kept";
  } else if (action === "merge" && existingText !== undefined) {
    parseEdgeConfig(existingText, paths.config); // refuse to merge into something invalid
    config = mergeConfig((parse(existingText) ?? {}) as Record<string, unknown>, template);
    verb = "Merged";
  } else {
    config = template;
  }
  // The token decides which controller this host belongs to; --ca-file is remembered for it.
  const caFile = input.caFile ? resolve(input.caFile) : config.edge.ca_file;
  const settled: EdgeConfig = {
    ...config,
    cluster: { ...config.cluster, endpoints },
    local_tools: input.localTools ?? config.local_tools,
    edge: { ...config.edge, ...(caFile ? { ca_file: caFile } : {}) },
  };
  const unchanged = verb === "Kept" && JSON.stringify(settled) === JSON.stringify(config);
  if (unchanged) {
    steps.push({ verb: "Kept", path: paths.config });
    return config;
  }
  await writeFileAtomic(paths.config, renderConfig(settled, facts), { mode: 0o600 });
  steps.push({
    verb: verb === "Kept" ? "Wrote" : verb,
    path: paths.config,
    note: verb === "Kept" ? "updated endpoint, CA or local_tools" : undefined,
  });
  return settled;
}

async function ensurePrivateDir(path: string, action: string, steps: Step[]): Promise<void> {
  if (await ensureDir(path, 0o700)) {
    steps.push({ verb: "Created", path: path + "/" });
  } else if (action.startsWith("chmod")) {
    await Deno.chmod(path, 0o700);
    steps.push({ verb: "Fixed", path: path + "/", note: "mode 0700" });
  }
}
