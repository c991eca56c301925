// Operator-set tags on edge hosts: the handles fleet targets select by (`tags=AnyOf(web)`).
// Each change is one UPDATE whose new array is computed from the row it locks, so two operators
// tagging the same host at once both land instead of one overwriting the other.
import { AegisError } from "../../shared/errors.ts";
import type { Queryable } from "../store/db.ts";
import { type Operator, requireWriter, tenantsOf } from "./operators.ts";

export const MAX_TAG_LENGTH = 64;
export const MAX_TAGS_PER_HOST = 32;

const TAG_CHAR = /^[A-Za-z0-9_.:-]$/;
const TAG = new RegExp(`^[A-Za-z0-9_.:-]{1,${MAX_TAG_LENGTH}}$`);
const TAG_RULE = `tags are 1 to ${MAX_TAG_LENGTH} letters, digits or _ . : -`;

/** One character that may appear in a tag; the fleet target parser scans with it. */
export function isTagChar(ch: string): boolean {
  return TAG_CHAR.test(ch);
}

/** Checks every tag and returns them sorted and unique; an error names the first bad one. */
export function validateTags(tags: readonly string[]): string[] {
  if (tags.length === 0) {
    throw new AegisError("INVALID_ARGUMENT", "give at least one tag");
  }
  for (const tag of tags) {
    if (!TAG.test(tag)) {
      throw new AegisError("INVALID_ARGUMENT", `invalid tag ${JSON.stringify(tag)}: ${TAG_RULE}`);
    }
  }
  const unique = [...new Set(tags)].sort();
  if (unique.length > MAX_TAGS_PER_HOST) {
    throw new AegisError(
      "INVALID_ARGUMENT",
      `${unique.length} tags given; a host has at most ${MAX_TAGS_PER_HOST}`,
    );
  }
  return unique;
}

// COLLATE "C" so the stored order is byte order on PostgreSQL and PGlite alike (and JS sort()'s
// for these ASCII-only tags); a locale collation would sort `Web` and `web` differently per server.
const UNION =
  `ARRAY(SELECT DISTINCT t COLLATE "C" FROM unnest(tags || $2::text[]) AS t ORDER BY 1)`;
const DIFFERENCE =
  `ARRAY(SELECT DISTINCT t COLLATE "C" FROM unnest(tags) AS t WHERE t <> ALL($2::text[]) ORDER BY 1)`;

/** Adds tags to a host the operator can see; returns its tags afterwards, sorted and unique. */
export async function addTags(
  db: Queryable,
  operator: Operator,
  nodeId: string,
  tags: readonly string[],
): Promise<string[]> {
  requireWriter(operator, "change tags");
  const wanted = validateTags(tags);
  // The limit sits in the WHERE clause so it is judged against the row actually updated.
  const rows = await db.query<{ tags: string[] }>(
    `UPDATE edge_daemons SET tags = ${UNION}
      WHERE node_id = $1 AND tenant_id = ANY($3::text[]) AND cardinality(${UNION}) <= $4
      RETURNING tags`,
    [nodeId, wanted, tenantsOf(operator), MAX_TAGS_PER_HOST],
  );
  if (rows[0]) return rows[0].tags;
  // Nothing updated: either no such (visible) host, or the union went over the limit.
  const current = await visibleTags(db, operator, nodeId);
  const total = new Set([...current, ...wanted]).size;
  throw new AegisError(
    "INVALID_ARGUMENT",
    `edge host ${nodeId} would have ${total} tags; a host has at most ${MAX_TAGS_PER_HOST}`,
    { hint: "Remove some first: `aegis edge tags rm <node-id> <tag...>`." },
  );
}

/** Removes tags from a host the operator can see; tags it does not have are ignored. */
export async function removeTags(
  db: Queryable,
  operator: Operator,
  nodeId: string,
  tags: readonly string[],
): Promise<string[]> {
  requireWriter(operator, "change tags");
  const unwanted = validateTags(tags);
  const rows = await db.query<{ tags: string[] }>(
    `UPDATE edge_daemons SET tags = ${DIFFERENCE}
      WHERE node_id = $1 AND tenant_id = ANY($3::text[])
      RETURNING tags`,
    [nodeId, unwanted, tenantsOf(operator)],
  );
  if (rows[0]) return rows[0].tags;
  throw notFound(nodeId);
}

async function visibleTags(db: Queryable, operator: Operator, nodeId: string): Promise<string[]> {
  const rows = await db.query<{ tags: string[] }>(
    `SELECT tags FROM edge_daemons WHERE node_id = $1 AND tenant_id = ANY($2::text[])`,
    [nodeId, tenantsOf(operator)],
  );
  if (!rows[0]) throw notFound(nodeId);
  return rows[0].tags;
}

/** Another tenant's host answers exactly like a missing one: no existence oracle. */
function notFound(nodeId: string): AegisError {
  return new AegisError("NOT_FOUND", `no edge host ${nodeId}`);
}
