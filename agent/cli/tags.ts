// `aegis edge tags add | rm`: the operator-set tags that fleet targets select hosts by.
import type { Command } from "@commander-js/extra-typings";
import type { Io } from "../../shared/cli/io.ts";
import { OperatorApi, resolveTarget, type TargetOptions } from "../operator/api_client.ts";
import { type CliContext, outputOption } from "./context.ts";

type Options = TargetOptions & { output: string };

interface TagsResult {
  node_id: string;
  tags: string[];
}

/** Adds (POST) or removes (DELETE) tags; the controller validates them and answers the result. */
export async function changeTags(
  change: "add" | "rm",
  nodeId: string,
  tags: string[],
  options: Options,
  io: Io,
  env: Record<string, string | undefined> = Deno.env.toObject(),
): Promise<number> {
  const api = new OperatorApi(resolveTarget(options, env));
  const response = await api.request(`/v1/edge/hosts/${encodeURIComponent(nodeId)}/tags`, {
    method: change === "add" ? "POST" : "DELETE",
    body: JSON.stringify({ tags }),
  });
  const result = await response.json() as TagsResult;
  io.out(
    options.output === "json"
      ? JSON.stringify(result, null, 2) + "\n"
      : `✔ ${result.node_id} tags: [${result.tags.join(", ")}]\n`,
  );
  return 0;
}

export function registerTags(edge: Command, { io, setExit }: CliContext): void {
  const tags = edge.command("tags").description("tag hosts so fleet targets can select them");
  tags.command("add")
    .description("add tags to a host (letters, digits and _ . : -, at most 32 per host)")
    .argument("<node-id>")
    .argument("<tag...>")
    .addOption(outputOption())
    .option("--endpoint <url>", "controller endpoint (or AEGIS_ENDPOINT)")
    .option("--token <jwt>", "operator token (or AEGIS_TOKEN)")
    .action(async (nodeId, list, opts) => setExit(await changeTags("add", nodeId, list, opts, io)));
  tags.command("rm")
    .alias("remove")
    .description("remove tags from a host; tags it does not have are ignored")
    .argument("<node-id>")
    .argument("<tag...>")
    .addOption(outputOption())
    .option("--endpoint <url>", "controller endpoint (or AEGIS_ENDPOINT)")
    .option("--token <jwt>", "operator token (or AEGIS_TOKEN)")
    .action(async (nodeId, list, opts) => setExit(await changeTags("rm", nodeId, list, opts, io)));
}
