// How a fleet operation paces itself: --mode (sequential | rolling=N | parallel) cuts the hosts
// into waves; --on-error (continue | stop-after=N | fail-fast) says when to stop starting waves.
import { AegisError } from "../../../shared/errors.ts";

export interface FleetMode {
  label: string;
  waveSize: number; // Infinity for parallel
}

export interface ErrorPolicy {
  label: string;
  /** Stop starting new waves once this many nodes failed. */
  stopAfter: number;
}

export function parseMode(text: string): FleetMode {
  const value = text.trim();
  if (value === "sequential") return { label: value, waveSize: 1 };
  if (value === "parallel") return { label: value, waveSize: Infinity };
  const rolling = value.match(/^rolling=(\d+)$/);
  if (rolling && Number(rolling[1]) >= 1) return { label: value, waveSize: Number(rolling[1]) };
  throw new AegisError(
    "INVALID_ARGUMENT",
    `--mode "${text}" is not sequential, rolling=N (N ≥ 1) or parallel`,
  );
}

export function parseErrorPolicy(text: string): ErrorPolicy {
  const value = text.trim();
  if (value === "continue") return { label: value, stopAfter: Infinity };
  if (value === "fail-fast") return { label: value, stopAfter: 1 };
  const after = value.match(/^stop-after=(\d+)$/);
  if (after && Number(after[1]) >= 1) return { label: value, stopAfter: Number(after[1]) };
  throw new AegisError(
    "INVALID_ARGUMENT",
    `--on-error "${text}" is not continue, stop-after=N (N ≥ 1) or fail-fast`,
  );
}

export function waves<T>(items: T[], mode: FleetMode): T[][] {
  const size = Number.isFinite(mode.waveSize) ? mode.waveSize : Math.max(1, items.length);
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
