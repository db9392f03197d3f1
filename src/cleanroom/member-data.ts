/**
 * A member's own data for its collaborations, read through its own Gatehouse pipeline: the
 * collaboration acts as a service principal of the member's workspace, so the member's Cedar
 * policy decides whether that principal may read the dataset for the collaboration's purpose,
 * the member's obligations (masks, row filters) apply, and the read is one entry in the
 * member's audit log with its result digest.
 */
import type { QueryRequest, QueryResponse } from '../kernel/types.ts';
import type { MemberData } from './service.ts';
import type { TableColumns } from './compute.ts';

export interface GovernedQueries {
  query(req: QueryRequest): Promise<QueryResponse>;
  /** The member's erasure generation (the façade has it): keys what a PSI server keeps. */
  erasureGeneration?(): Promise<number>;
}

const IDENT = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

export function pipelineMemberData(gatehouse: GovernedQueries, credential: string): MemberData {
  return {
    async read(dataset, columns, purpose): Promise<TableColumns> {
      for (const n of [dataset, ...columns]) if (!IDENT.test(n)) throw new Error(`invalid identifier ${JSON.stringify(n)}`);
      const sql = `SELECT ${columns.map((c) => `"${c}"`).join(', ')} FROM "${dataset}"`;
      const r = await gatehouse.query({ credential, sql, purpose, source: '127.0.0.1', channel: 'cleanroom' });
      return { columns: r.columns.map((c) => c.name), rows: r.rows };
    },
    ...(gatehouse.erasureGeneration ? { version: async () => `erasures ${await gatehouse.erasureGeneration!()}` } : {}),
  };
}

/** What a served node's pipeline offers its clean rooms: the read as an internal principal. */
export interface InternalReads {
  cleanroomRead(req: { principal: string; sql: string; purpose: string; collaborationId: string; requestId: string; peer: string }): Promise<QueryResponse>;
  erasureGeneration(): Promise<number>;
}

/**
 * A served node's own data for its collaborations: read through the façade as the internal
 * clean-room principal (src/operations/cleanroom/member-read.ts), so no API key is needed.
 * Same SQL, same policy and obligations, one entry in the member's log per read.
 */
export function internalMemberData(gatehouse: InternalReads, principal: string): MemberData {
  return {
    async read(dataset, columns, purpose, context): Promise<TableColumns> {
      for (const n of [dataset, ...columns]) if (!IDENT.test(n)) throw new Error(`invalid identifier ${JSON.stringify(n)}`);
      const sql = `SELECT ${columns.map((c) => `"${c}"`).join(', ')} FROM "${dataset}"`;
      const r = await gatehouse.cleanroomRead({ principal, sql, purpose, collaborationId: context.collaborationId, requestId: context.requestId, peer: context.peer ?? 'self' });
      return { columns: r.columns.map((c) => c.name), rows: r.rows };
    },
    async version(): Promise<string> { return `erasures ${await gatehouse.erasureGeneration()}`; },
  };
}
