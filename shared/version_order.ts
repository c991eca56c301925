// Release versions in order, as semver orders them (VERSION_PATTERN: no build metadata): numbers
// numerically, a pre-release before its release, pre-release fields one by one. The controller
// uses it to mark hosts behind its release; `aegis update` to refuse a downgrade it was not
// asked for.
export function compareVersions(a: string, b: string): number {
  const [coreA, preA] = split(a);
  const [coreB, preB] = split(b);
  for (let i = 0; i < 3; i++) {
    if (coreA[i] !== coreB[i]) return coreA[i] < coreB[i] ? -1 : 1;
  }
  if (preA === preB) return 0;
  if (preA === undefined) return 1;
  if (preB === undefined) return -1;
  const fieldsA = preA.split(".");
  const fieldsB = preB.split(".");
  for (let i = 0; i < Math.max(fieldsA.length, fieldsB.length); i++) {
    if (fieldsA[i] === undefined) return -1;
    if (fieldsB[i] === undefined) return 1;
    const order = compareField(fieldsA[i], fieldsB[i]);
    if (order !== 0) return order;
  }
  return 0;
}

function split(version: string): [number[], string | undefined] {
  const dash = version.indexOf("-");
  const core = (dash < 0 ? version : version.slice(0, dash)).split(".").map(Number);
  return [core, dash < 0 ? undefined : version.slice(dash + 1)];
}

function compareField(a: string, b: string): number {
  const numeric = /^\d+$/;
  if (numeric.test(a) && numeric.test(b)) return Math.sign(Number(a) - Number(b));
  if (numeric.test(a)) return -1;
  if (numeric.test(b)) return 1;
  return a < b ? -1 : a > b ? 1 : 0;
}
