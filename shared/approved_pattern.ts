// An approved pattern as the REST API carries it (`/v1/edge/approved-patterns`): what the
// controller answers and what `aegis edge approved` reads, so the two cannot drift apart.
export interface ApprovedPattern {
  id: string;
  tenant_id: string;
  pattern: string;
  cidrs: string[];
  created_by: string;
  created_at: string;
}
