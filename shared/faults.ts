// Named fault points for the failure-injection tests of multi-step operations (key rotation,
// token refresh). AEGIS_TEST_FAULTS lists points, each `name` (throw there every time),
// `name:once` (throw the first time this process passes it: a single lost response) or
// `name:crash` (end the process there, as a power cut would: no clean-up runs). Unset in
// production, so each point is one environment lookup.

export class InjectedFault extends Error {
  constructor(point: string) {
    super(`injected fault at ${point}`);
    this.name = "InjectedFault";
  }
}

/** `once` points already fired in this process; bounded by the points named in the variable. */
const fired = new Set<string>();

export function faultPoint(point: string): void {
  const spec = Deno.env.get("AEGIS_TEST_FAULTS");
  if (!spec) return;
  for (const entry of spec.split(",")) {
    const [name, mode] = entry.trim().split(":");
    if (name !== point) continue;
    if (mode === "crash") Deno.exit(99);
    if (mode === "once") {
      if (fired.has(point)) continue;
      fired.add(point);
    }
    throw new InjectedFault(point);
  }
}
