// The bootstrap plan: before anything is written or sent, look at every artifact enrollment
// touches and decide, per artifact, what to do with it: from flags, from a prompt, or by refusing.
import { AegisError } from "../../shared/errors.ts";
import { exists, modeOf, readTextIfExists } from "../../shared/fs/atomic.ts";
import { NodePrivateKey } from "../../shared/crypto/node_key.ts";
import { decodeNodeToken } from "../../shared/tokens/claims.ts";
import type { EdgePaths } from "../state/paths.ts";
import type { ToolGrant } from "./tools_grant.ts";

export type ConflictPolicy = "prompt" | "force" | "keep";

export type ArtifactId =
  | "config_dir"
  | "config"
  | "keypair"
  | "enrollment_token"
  | "node_token"
  | "service"
  | "secrets";

export interface PlannedArtifact {
  artifact: ArtifactId;
  path: string;
  present: boolean;
  action: string;
  note?: string;
}

/** Asks a person to pick one of the choices; returns the chosen value. */
export type Prompter = (
  question: string,
  choices: { value: string; name: string }[],
) => Promise<string>;

export interface PlanInput {
  paths: EdgePaths;
  enrollmentToken: string;
  /** Token-free (`--trusted`): the controller's trusted-enrollment rules decide; no token file. */
  trusted?: boolean;
  policy: ConflictPolicy;
  /** Undefined in dry-run and non-interactive runs: a conflict then shows as "prompt". */
  prompt?: Prompter;
  /** True for --dry-run: unresolved conflicts are reported, not refused. */
  preview: boolean;
  service: { path?: string; present: boolean; disabled: boolean; unitName: string };
}

export interface Plan {
  artifacts: PlannedArtifact[];
  /** The existing key when it is reused. */
  existingKey?: NodePrivateKey;
  existingToken?: string;
  /** Token-free enrollment (`--trusted`). */
  trusted?: boolean;
  /** What local_tools the host ends up with, decided after the artifacts. */
  tools?: ToolGrant;
  /** Whether calls will run with ~/.aegis/edge hidden (bubblewrap), probed on this host. */
  sandbox?: { available: boolean; detail: string };
}

export async function buildPlan(input: PlanInput): Promise<Plan> {
  const { paths } = input;
  const plan: Plan = { artifacts: [], trusted: input.trusted };
  const add = (a: PlannedArtifact) => plan.artifacts.push(a);

  add(await dirArtifact("config_dir", paths.dir));

  const configPresent = await exists(paths.config);
  add({
    artifact: "config",
    path: paths.config,
    present: configPresent,
    action: configPresent
      ? await decide(input, "config", `${paths.config} exists.`, [
        ["use_existing", "Use existing"],
        ["overwrite", "Overwrite with a fresh template"],
        ["merge", "Merge (keep my values, add what is missing)"],
      ], { force: "overwrite", keep: "use_existing" })
      : "generate",
  });

  const keyPem = await readTextIfExists(paths.key);
  let keyAction = "generate";
  if (keyPem !== undefined) {
    let parsed: NodePrivateKey | undefined;
    try {
      parsed = NodePrivateKey.fromPem(keyPem);
    } catch { /* unreadable: it cannot be reused */ }
    keyAction = await decide(
      input,
      "keypair",
      `${paths.key} exists. Generating a new key locks out a daemon enrolled with the old one at its next attest.`,
      parsed ? [["reuse", "Reuse existing"], ["generate_new", "Generate new (destructive)"]] : [[
        "generate_new",
        "Generate new (the existing key is unreadable)",
      ]],
      {
        force: "generate_new",
        keep: parsed ? "reuse" : unsafe("node.key is unreadable and cannot be reused"),
      },
    );
    if (keyAction === "reuse") plan.existingKey = parsed;
  }
  add({
    artifact: "keypair",
    path: paths.key,
    present: keyPem !== undefined,
    action: keyAction,
    note: keyAction === "generate_new"
      ? "the old key stops working for any node enrolled with it"
      : undefined,
  });

  const pendingToken = (await readTextIfExists(paths.enrollmentToken))?.trim();
  let tokenAction = input.trusted ? "none" : "write";
  if (
    !input.trusted && pendingToken !== undefined && pendingToken !== input.enrollmentToken.trim()
  ) {
    tokenAction = await decide(
      input,
      "enrollment_token",
      `${paths.enrollmentToken} holds a different, unredeemed enrollment token.`,
      [["replace", "Replace it with the token given now"]],
      {
        force: "replace",
        keep: unsafe(
          "a different enrollment token is pending; reusing it would enroll with a token you did not pass",
        ),
      },
    );
  }
  add({
    artifact: "enrollment_token",
    path: paths.enrollmentToken,
    present: pendingToken !== undefined,
    action: tokenAction,
    note: input.trusted
      ? "trusted enrollment: no token is sent"
      : "consumed and deleted once enrollment succeeds",
  });

  add(await nodeTokenArtifact(input, plan, keyAction));

  const { service } = input;
  add({
    artifact: "service",
    path: service.path ?? service.unitName,
    present: service.present,
    action: service.disabled
      ? "skip (--no-service)"
      : service.present
      ? "skip (present)"
      : "install",
    note: service.present && !service.disabled
      ? "`aegis edge service reinstall` replaces it"
      : undefined,
  });

  add(await dirArtifact("secrets", paths.secrets));
  return plan;
}

async function nodeTokenArtifact(
  input: PlanInput,
  plan: Plan,
  keyAction: string,
): Promise<PlannedArtifact> {
  const { paths } = input;
  const token = (await readTextIfExists(paths.nodeToken))?.trim();
  const base = {
    artifact: "node_token" as const,
    path: paths.nodeToken,
    present: token !== undefined,
  };
  if (token === undefined) return { ...base, action: "write after ChallengeNode" };

  const fingerprint = plan.existingKey ? await plan.existingKey.publicKey.fingerprint() : undefined;
  let boundTo: string | undefined;
  let nodeId = "?";
  try {
    const claims = decodeNodeToken(token);
    boundTo = claims.cnf.kfp;
    nodeId = claims.sub;
  } catch { /* unreadable: only Replace is safe */ }
  const matches = fingerprint !== undefined && boundTo === fingerprint;
  if (!matches) {
    if (input.policy === "keep") {
      throw new AegisError(
        "KEY_TOKEN_MISMATCH",
        keyAction === "reuse"
          ? `node.token (node ${nodeId}) does not belong to node.key, so it cannot be reused`
          : "node.token cannot be reused with a new key",
      );
    }
    return { ...base, action: "replace", note: "it does not match the key, so it is replaced" };
  }
  const action = await decide(
    input,
    "node_token",
    `${paths.nodeToken} (node ${nodeId}) matches the key.`,
    [
      ["reuse", "Reuse (stay node " + nodeId + ", do not redeem the new token)"],
      ["replace", "Replace (enroll as a new node)"],
    ],
    { force: "replace", keep: "reuse" },
  );
  if (action === "reuse") plan.existingToken = token;
  return { ...base, action, note: action === "reuse" ? `stays node ${nodeId}` : undefined };
}

async function dirArtifact(
  artifact: "config_dir" | "secrets",
  path: string,
): Promise<PlannedArtifact> {
  const mode = await modeOf(path);
  if (mode === undefined) return { artifact, path, present: false, action: "create (0700)" };
  const tooOpen = (mode & 0o077) !== 0;
  return {
    artifact,
    path,
    present: true,
    action: tooOpen ? "chmod 0700" : "verify",
    note: tooOpen ? `mode is ${mode.toString(8).padStart(4, "0")}, too permissive` : undefined,
  };
}

const UNSAFE = Symbol("unsafe");
type Unsafe = { [UNSAFE]: string };
function unsafe(reason: string): Unsafe {
  return { [UNSAFE]: reason };
}

async function decide(
  input: PlanInput,
  artifact: ArtifactId,
  question: string,
  choices: [string, string][],
  flags: { force: string; keep: string | Unsafe },
): Promise<string> {
  if (input.policy === "force") return flags.force;
  if (input.policy === "keep") {
    if (typeof flags.keep !== "string") {
      throw new AegisError(
        "UNSAFE_REUSE",
        `--keep-existing cannot reuse ${artifact}: ${flags.keep[UNSAFE]}`,
        {
          hint: "Re-run with --force to replace it, or remove it by hand.",
        },
      );
    }
    return flags.keep;
  }
  if (input.preview || !input.prompt) {
    if (input.preview) {
      return `prompt: ${choices.map(([, name]) => name.split(" (")[0]).join(" / ")} / Abort`;
    }
    throw new AegisError(
      "WOULD_PROMPT",
      `${question} Deciding needs a prompt, and this run cannot prompt.`,
    );
  }
  const answer = await input.prompt(question, [
    ...choices.map(([value, name]) => ({ value, name })),
    { value: "abort", name: "Abort" },
  ]);
  if (answer === "abort") {
    throw new AegisError("ABORTED", `enrollment aborted at ${artifact}; nothing was written`);
  }
  return answer;
}
