// The scene of a self-update test: a real controller serving release NEW from a releases
// directory, and a host running OLD under a supervisor (./support.ts).
import { join } from "node:path";
import { type ControllerProcess, startControllerProcess } from "../support/controller.ts";
import { buildLauncher, type ReleaseKey, releaseKey, signRelease } from "./fixture_release.ts";
import { setUpUpdateHost, type UpdateHost } from "./support.ts";

export const OLD = "1.0.0";
export const NEW = "1.1.0";

export interface Scene {
  controller: ControllerProcess;
  host: UpdateHost;
  key: ReleaseKey;
  work: string;
}

/**
 * A controller serving release NEW (made by `serve`) and a host running OLD: our own launcher
 * built with the same key, or none (null: an unsigned build), or the launcher `installed` names.
 */
export async function scene(
  serve: (releases: string, work: string, key: ReleaseKey) => Promise<void>,
  hostKey: "same" | null | (() => Promise<string>) = "same",
): Promise<Scene> {
  const work = await Deno.makeTempDir({ prefix: "aegis-update-" });
  const releases = join(work, "releases");
  await Deno.mkdir(releases);
  const key = releaseKey();
  await serve(releases, work, key);
  const controller = await startControllerProcess({
    yaml: `bootstrap:\n  releases_dir: "${releases}"`,
  });
  try {
    const old = typeof hostKey === "function"
      ? await hostKey()
      : await buildLauncher(work, { version: OLD, key: hostKey === "same" ? key : null });
    const host = await setUpUpdateHost(controller, old, OLD);
    return { controller, host, key, work };
  } catch (error) {
    await controller.stop();
    throw error;
  }
}

export async function teardown(s: Scene) {
  await s.host.cleanup();
  await s.controller.stop();
  await Deno.remove(s.work, { recursive: true }).catch(() => {});
}

/** Serves a good NEW release signed with the host's key. */
export async function goodRelease(releases: string, work: string, key: ReleaseKey) {
  await signRelease(releases, NEW, await buildLauncher(work, { version: NEW, key }), key);
}

/** Serves a NEW release whose daemon has no network: it starts but can never connect. */
export async function unreachableRelease(releases: string, work: string, key: ReleaseKey) {
  const launcher = await buildLauncher(work, { version: NEW, key, denyNet: true });
  await signRelease(releases, NEW, launcher, key);
}
