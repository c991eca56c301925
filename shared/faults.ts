// Named fault points for the failure-injection tests of multi-step operations (key rotation).
// AEGIS_TEST_FAULTS lists points, each `name` (throw there) or `name:crash` (end the process
// there, as a power cut would: no clean-up runs). Unset in production, so each point is one
// environment lookup.

export class InjectedFault extends Error {
  constructor(point: string) {
    super(`injected fault at ${point}`);
    this.name = "InjectedFault";
  }
}

export function faultPoint(point: string): void {
  const spec = Deno.env.get("AEGIS_TEST_FAULTS");
  if (!spec) return;
  for (const entry of spec.split(",")) {
    const [name, mode] = entry.trim().split(":");
    if (name !== point) continue;
    if (mode === "crash") Deno.exit(99);
    throw new InjectedFault(point);
  }
}
