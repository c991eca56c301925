// Where each simulated daemon of the scale bench connects from: its own address in 127.0.0.0/8
// (all of it is loopback on Linux), so 15,000 connections are not limited by one address's
// ephemeral ports, and the controller's per-address caps see one host per address, as in a real
// fleet. Worker w takes 127.<w+1>.x.y; 127.0.0.0/16 is left to the controller's side.
import { AegisError } from "../shared/errors.ts";

/** Host numbers used per /24: .1 to .250 (no .0 or .255, which look like network/broadcast). */
export const HOSTS_PER_BLOCK = 250;
/** Daemons one worker can place: 256 blocks of 250. */
export const MAX_PER_WORKER = 256 * HOSTS_PER_BLOCK;
export const MAX_WORKERS = 254;

/** The source address of daemon `index` (0-based) of worker `worker` (0-based). */
export function sourceAddress(worker: number, index: number): string {
  if (!Number.isInteger(worker) || worker < 0 || worker >= MAX_WORKERS) {
    throw new AegisError("INVALID_ARGUMENT", `worker ${worker} is outside 0..${MAX_WORKERS - 1}`);
  }
  if (!Number.isInteger(index) || index < 0 || index >= MAX_PER_WORKER) {
    throw new AegisError("INVALID_ARGUMENT", `index ${index} is outside 0..${MAX_PER_WORKER - 1}`);
  }
  const block = Math.floor(index / HOSTS_PER_BLOCK);
  return `127.${worker + 1}.${block}.${1 + (index % HOSTS_PER_BLOCK)}`;
}

/** Deals `count` items round-robin over `workers` shares: share w gets items w, w+W, w+2W, … */
export function deal<T>(items: T[], workers: number): T[][] {
  if (!Number.isInteger(workers) || workers < 1 || workers > MAX_WORKERS) {
    throw new AegisError("INVALID_ARGUMENT", `--workers must be 1..${MAX_WORKERS}, not ${workers}`);
  }
  const shares: T[][] = Array.from({ length: workers }, () => []);
  items.forEach((item, i) => shares[i % workers].push(item));
  const largest = shares[0].length;
  if (largest > MAX_PER_WORKER) {
    throw new AegisError(
      "INVALID_ARGUMENT",
      `${largest} daemons in one worker is more than its ${MAX_PER_WORKER} addresses: add workers`,
    );
  }
  return shares;
}
