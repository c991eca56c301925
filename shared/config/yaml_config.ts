// Reading a YAML config file into a zod schema: one place for the YAML error and the key-naming
// validation error, whichever file it is.
import type { z } from "zod";
import { parse } from "yaml";
import { AegisError } from "../errors.ts";
import { configError } from "./zod_error.ts";

export function parseYamlConfig<S extends z.ZodType>(
  text: string,
  source: string,
  schema: S,
  transform: (raw: unknown) => unknown = (raw) => raw,
): z.infer<S> {
  let raw: unknown;
  try {
    raw = parse(text) ?? {};
  } catch (error) {
    throw new AegisError(
      "CONFIG_INVALID",
      `${source} is not valid YAML: ${(error as Error).message}`,
    );
  }
  const result = schema.safeParse(transform(raw));
  if (!result.success) throw configError(source, result.error);
  return result.data;
}
