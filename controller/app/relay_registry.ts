// Where each relay can be reached by its peers. Every relay upserts its row at start and every
// REFRESH_MS after; rows not refreshed within STALE_MS belong to relays that died and are pruned,
// and a relay removes its own row when it stops.
import type { Queryable } from "../store/db.ts";
import type { Clock } from "./clock.ts";

export const RELAY_REFRESH_MS = 15_000;
export const RELAY_STALE_MS = 60_000;

export class RelayRegistry {
  #timer?: ReturnType<typeof setInterval>;

  constructor(
    private readonly db: Queryable,
    private readonly relayId: string,
    private readonly peerEndpoint: string,
    private readonly clock: Clock,
    private readonly log: (message: string) => void,
  ) {}

  async start(): Promise<void> {
    await this.announce();
    this.#timer = setInterval(
      () => this.announce().catch((e) => this.log(`relay registry: ${(e as Error).message}`)),
      RELAY_REFRESH_MS,
    );
    Deno.unrefTimer(this.#timer);
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.db.query("DELETE FROM relays WHERE relay_id = $1", [this.relayId]);
  }

  async announce(): Promise<void> {
    const now = this.clock();
    await this.db.query(
      `INSERT INTO relays (relay_id, peer_endpoint, last_seen_at) VALUES ($1, $2, $3)
       ON CONFLICT (relay_id) DO UPDATE SET peer_endpoint = $2, last_seen_at = $3`,
      [this.relayId, this.peerEndpoint, now],
    );
    await this.#dropStale(now);
  }

  /**
   * A relay that died (SIGKILL, lost host) never finishes the calls it was relaying, and only it
   * would: its restart marks them interrupted, but it may never come back under that name. Its
   * registration going stale is the sign, so its row goes and its calls end in one statement (a
   * registration dropped without its calls would leave them running for ever). A relay that was
   * only cut off from the database and still runs a call records its real end later
   * (unconditionally, so it wins), and its next announce registers it again.
   */
  async #dropStale(now: Date): Promise<void> {
    const ended = await this.db.query<{ relay_id: string; call_id: string | null }>(
      `WITH gone AS (DELETE FROM relays WHERE last_seen_at < $1 RETURNING relay_id),
            ended AS (
              UPDATE tool_calls SET status = 'interrupted', finished_at = $2,
                     error = 'the relay running the call stopped answering'
                WHERE relay_id IN (SELECT relay_id FROM gone) AND status = 'running'
                RETURNING relay_id, call_id)
       SELECT relay_id, call_id FROM ended`,
      [new Date(now.getTime() - RELAY_STALE_MS), now],
    );
    if (ended.length > 0) {
      const relays = [...new Set(ended.map((r) => r.relay_id))];
      this.log(`relay registry: ${relays.join(", ")} went away; ${ended.length} call(s) ended`);
    }
  }

  /** The peer endpoint of a live relay, or undefined if it is unknown or stale. */
  async endpointOf(relayId: string): Promise<string | undefined> {
    const rows = await this.db.query<{ peer_endpoint: string }>(
      "SELECT peer_endpoint FROM relays WHERE relay_id = $1 AND last_seen_at >= $2",
      [relayId, new Date(this.clock().getTime() - RELAY_STALE_MS)],
    );
    return rows[0]?.peer_endpoint;
  }

  /** The peer endpoints of every live relay (peers missing here are closed by the clients). */
  async liveEndpoints(): Promise<string[]> {
    const rows = await this.db.query<{ peer_endpoint: string }>(
      "SELECT peer_endpoint FROM relays WHERE last_seen_at >= $1",
      [new Date(this.clock().getTime() - RELAY_STALE_MS)],
    );
    return rows.map((row) => row.peer_endpoint);
  }
}
