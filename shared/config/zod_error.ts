// Turns a zod failure into one AegisError whose message names every offending key.
import type { z } from "zod";
import { AegisError } from "../errors.ts";

export function configError(source: string, error: z.ZodError): AegisError {
  const lines = error.issues.map((issue) => {
    const key = issue.path.length ? issue.path.join(".") : "(top level)";
    return `  ${key}: ${issue.message}`;
  });
  return new AegisError("CONFIG_INVALID", `${source} is not valid:\n${lines.join("\n")}`);
}
