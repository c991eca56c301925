// Where the host keeps its edge state. Everything hangs off $HOME (USERPROFILE on Windows),
// so tests relocate a whole host by setting HOME.
import { join } from "node:path";
import { AegisError } from "../../shared/errors.ts";

export interface EdgePaths {
  home: string;
  dir: string;
  config: string;
  key: string;
  publicKey: string;
  enrollmentToken: string;
  nodeToken: string;
  state: string;
  secrets: string;
  archive: string;
  /** A rotation in progress: the new key, then the token the controller issued for it. */
  pendingKey: string;
  pendingToken: string;
}

export function homeDir(env: Record<string, string | undefined> = Deno.env.toObject()): string {
  const home = env.HOME ?? env.USERPROFILE;
  if (!home) {
    throw new AegisError("CONFIG_INVALID", "neither HOME nor USERPROFILE is set", {
      hint: "Set HOME to the user's home directory.",
    });
  }
  return home;
}

export function edgePaths(home = homeDir()): EdgePaths {
  const dir = join(home, ".aegis", "edge");
  return {
    home,
    dir,
    config: join(dir, "aegis-config.yaml"),
    key: join(dir, "node.key"),
    publicKey: join(dir, "node.key.pub"),
    enrollmentToken: join(dir, "enrollment.jwt"),
    nodeToken: join(dir, "node.token"),
    state: join(dir, "state.json"),
    secrets: join(dir, "secrets"),
    archive: join(dir, "archive"),
    pendingKey: join(dir, "node.key.new"),
    pendingToken: join(dir, "node.token.new"),
  };
}

/** A path shown to people: the home directory as `~`. */
export function displayPath(path: string, home: string): string {
  return path.startsWith(home) ? `~${path.slice(home.length)}` : path;
}
