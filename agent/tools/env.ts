// The environment a command sees: the daemon's own, minus its AEGIS_* settings (tokens and paths
// that are the daemon's business, not the command's), plus what the call asked for.
import { ToolRefusal } from "./refusal.ts";
import { SECRET_PREFIX } from "./env_policy.ts";

export async function buildEnv(
  given: Record<string, string> | undefined,
  resolveSecret: (name: string) => Promise<string | undefined>,
  base: Record<string, string> = Deno.env.toObject(),
): Promise<Record<string, string>> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(base)) {
    if (!key.toUpperCase().startsWith("AEGIS_")) env[key] = value;
  }
  for (const [key, value] of Object.entries(given ?? {})) {
    env[key] = value.startsWith(SECRET_PREFIX)
      ? await secret(value.slice(SECRET_PREFIX.length), resolveSecret)
      : value;
  }
  return env;
}

// Messages name the secret, never its value: they travel to the controller and into logs.
async function secret(
  name: string,
  resolveSecret: (name: string) => Promise<string | undefined>,
): Promise<string> {
  let value: string | undefined;
  try {
    value = await resolveSecret(name);
  } catch (error) {
    throw new ToolRefusal(
      "SECRET_UNAVAILABLE",
      `secret "${name}" could not be read on this host: ${(error as Error).message}`,
      { cause: error },
    );
  }
  if (value === undefined) {
    throw new ToolRefusal(
      "SECRET_MISSING",
      `secret "${name}" is not set on this host (aegis edge secrets set ${name})`,
    );
  }
  return value;
}
