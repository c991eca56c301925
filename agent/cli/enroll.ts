// `aegis edge enroll <token>`: bootstrap plan, attestation, node token, service, first stream.
import { sandboxStatus } from "../tools/sandbox.ts";
import { checkbox, select } from "@inquirer/prompts";
import { AegisError } from "../../shared/errors.ts";
import { decodeEnrollmentToken } from "../../shared/tokens/claims.ts";
import { parseEndpointList } from "../../shared/endpoint.ts";
import type { Io } from "../../shared/cli/io.ts";
import type { Command } from "@commander-js/extra-typings";
import { caFileOption, type CliContext, outputOption } from "./context.ts";
import { edgePaths, homeDir } from "../state/paths.ts";
import { inspectHost } from "../enroll/inspect.ts";
import { buildPlan, type ConflictPolicy, type Prompter } from "../enroll/plan.ts";
import { applyPlan } from "../enroll/apply.ts";
import { planJson, renderPlan, renderResult, resultJson } from "../enroll/render.ts";
import { createNodeClient } from "../client/node_client.ts";
import { probeService, serviceContext, serviceStep } from "./service_step.ts";
import { readToken } from "./token_input.ts";
import { trustedClaims } from "../enroll/trusted.ts";
import {
  decideTools,
  existingLocalTools,
  parseLocalTools,
  type ToolPrompter,
} from "../enroll/tools_grant.ts";

export interface EnrollOptions {
  tokenFile?: string;
  nonInteractive?: boolean;
  force?: boolean;
  keepExisting?: boolean;
  dryRun?: boolean;
  output?: string;
  service?: boolean;
  caFile?: string;
  localTools?: string;
  /** Token-free enrollment against --endpoint (the controller's trusted-enrollment rules). */
  trusted?: boolean;
  endpoint?: string;
}

export async function enroll(
  tokenArg: string | undefined,
  options: EnrollOptions,
  io: Io,
): Promise<number> {
  if (options.force && options.keepExisting) {
    throw new AegisError(
      "INVALID_ARGUMENT",
      "--force and --keep-existing contradict each other; pass one",
    );
  }
  const json = options.output === "json";
  const flagTools = options.localTools === undefined
    ? undefined
    : parseLocalTools(options.localTools);
  if (options.endpoint && !options.trusted) {
    throw new AegisError(
      "INVALID_ARGUMENT",
      "--endpoint goes with --trusted; an enrollment token carries its controller's endpoint",
    );
  }
  const token = options.trusted ? "" : await readToken(tokenArg, options.tokenFile);
  const claims = options.trusted
    ? trustedClaims({ endpoint: options.endpoint, tokenArg, tokenFile: options.tokenFile })
    : decodeEnrollmentToken(token);
  const endpoint = parseEndpointList(claims.cep)[0];
  const env = Deno.env.toObject();
  const home = homeDir(env);
  const paths = edgePaths(home);
  const facts = inspectHost(env, home);
  const policy: ConflictPolicy = options.force ? "force" : options.keepExisting ? "keep" : "prompt";
  const canPrompt = io.interactive && !options.nonInteractive && !options.dryRun && !json;
  const svc = serviceContext(home, env);
  const noService = options.service === false;

  const plan = await buildPlan({
    paths,
    enrollmentToken: token,
    trusted: options.trusted,
    policy,
    preview: Boolean(options.dryRun),
    prompt: canPrompt ? inquirerPrompt : undefined,
    service: { ...(await probeService(svc)), disabled: noService },
  });
  const configAction = plan.artifacts.find((a) => a.artifact === "config")!.action;
  plan.tools = await decideTools({
    flag: flagTools,
    detected: facts.localTools,
    existing: await existingLocalTools(paths.config, configAction),
    tenant: claims.tenant_id,
    prompt: canPrompt ? toolPrompt : undefined,
  });
  if (plan.tools.granted.length > 0) plan.sandbox = await sandboxStatus();

  if (options.dryRun) {
    io.out(
      json
        ? JSON.stringify(planJson(plan, claims, endpoint, true), null, 2) + "\n"
        : renderPlan(plan, claims, endpoint, home),
    );
    return 0;
  }

  const client = await createNodeClient(endpoint, { caFile: options.caFile });
  const result = await applyPlan({
    plan,
    paths,
    facts,
    token,
    claims,
    endpoint,
    client,
    service: noService ? undefined : serviceStep(svc),
    caFile: options.caFile,
    localTools: plan.tools.source === "existing" ? undefined : plan.tools.granted,
    log: (line) => io.err(line + "\n"),
  }).finally(() => client.close());
  if (json) {
    io.out(
      JSON.stringify(
        { ...resultJson(result, home), plan: planJson(plan, claims, endpoint, false) },
        null,
        2,
      ) + "\n",
    );
  } else {
    io.out(renderResult(result, home, plan));
    if (noService || !result.serviceStarted) {
      io.out(
        `  Keep it connected: run \`aegis edge run\` (or install the service: \`aegis edge service install\`).\n`,
      );
    }
  }
  return 0;
}

const inquirerPrompt: Prompter = (question, choices) => select({ message: question, choices });
// Every suggestion starts ticked: the person sees exactly what will be granted and narrows it.
const toolPrompt: ToolPrompter = (question, choices) =>
  checkbox({ message: question, choices: choices.map((c) => ({ ...c, checked: true })) });

export function registerEnroll(edge: Command, { io, setExit }: CliContext): void {
  edge.command("enroll")
    .description(
      "enroll this host with a one-time token (or --trusted, without one) and start the daemon",
    )
    .argument("[token]", "the enrollment token (or use --token-file)")
    .option("--token-file <file>", "read the token from a file (`-` for standard input)")
    .option(
      "--trusted",
      "enroll without a token: the controller admits this host if its hostname and source network match a trusted-enrollment rule",
    )
    .option("--endpoint <url>", "the controller to enroll with (only with --trusted)")
    .option("--non-interactive", "fail rather than prompt")
    .option("--force", "overwrite on every conflict")
    .option("--keep-existing", "reuse on every conflict; fail if reuse would be unsafe")
    .option("--dry-run", "print the bootstrap plan; write nothing, contact nobody")
    .addOption(outputOption())
    .option("--no-service", "do not install the service")
    .addOption(caFileOption())
    .option(
      "--local-tools <list>",
      'tools to grant, comma separated ("none" for none); without it, nothing is granted unless chosen at the prompt',
    )
    .action(async (token, opts) => setExit(await enroll(token, opts, io)));
}
