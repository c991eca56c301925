// The argument schemas of the built-in tools. Strict, so a misspelt field is refused by name
// instead of being silently ignored (a dropped `timeout_secs` would quietly mean 30 s).
import { z } from "zod";
import { ToolRefusal } from "./refusal.ts";

const MIB = 1024 * 1024;
const noNul = (s: string) => !s.includes("\0");

// Bounds well under the kernel's ARG_MAX (2 MiB for argv + environment together).
const KIB = 1024;

export const CmdRunArgsSchema = z.strictObject({
  argv: z.array(z.string().max(128 * KIB).refine(noNul, "must not contain NUL bytes")).min(1)
    .max(4096)
    .refine((argv) => argv[0] !== "", "argv[0] must name a program").optional(),
  shell: z.string().min(1).max(256 * KIB).refine(noNul, "must not contain NUL bytes").optional(),
  cwd: z.string().min(1).max(4096).optional(),
  env: z.record(
    z.string().max(128).regex(/^[^=\0]+$/, "env names must be non-empty, without = or NUL"),
    z.string().max(64 * KIB).refine(noNul, "must not contain NUL bytes"),
  ).refine((env) => Object.keys(env).length <= 128, "at most 128 variables").optional(),
  stdin: z.string().optional(),
  timeout_secs: z.number().min(1).max(86_400).default(30),
  max_output_bytes: z.number().int().min(1).max(64 * MIB).default(MIB),
}).refine((a) => (a.argv === undefined) !== (a.shell === undefined), {
  message: "give exactly one of argv or shell",
});

export type CmdRunArgs = z.infer<typeof CmdRunArgsSchema>;

export const EchoArgsSchema = z.strictObject({
  message: z.string().optional(),
  data: z.unknown().optional(),
});

/** Parses a call's JSON arguments, refusing with every offending field named. */
export function parseArguments<T>(tool: string, json: string, schema: z.ZodType<T>): T {
  let raw: unknown;
  try {
    // Protobuf sends an unset string as "", which means "no arguments".
    raw = json.trim() === "" ? {} : JSON.parse(json);
  } catch (error) {
    throw new ToolRefusal(
      "INVALID_ARGUMENTS",
      `arguments for ${tool} are not valid JSON: ${(error as Error).message}`,
    );
  }
  const result = schema.safeParse(raw);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => {
    const field = issue.path.length ? issue.path.map(String).join(".") : "arguments";
    return `${field}: ${issue.message}`;
  });
  throw new ToolRefusal(
    "INVALID_ARGUMENTS",
    `invalid arguments for ${tool}: ${problems.join("; ")}`,
  );
}
