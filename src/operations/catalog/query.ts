/**
 * Catalog queries from PostgreSQL clients and BI tools (pg_catalog, information_schema,
 * version(), current_schema(), …), as one audited request on the one path:
 *
 *   authenticate → parse the client's statement with libpg-query and check every node
 *   against the catalog allowlist (src/catalog/render.ts) → render Gatehouse's own SQL →
 *   build the data-free catalog of what the principal may see (the dataset listing's
 *   effective access) → run it on that catalog (no dataset row is ever in it) → one entry
 *
 * The client's text never reaches an engine, and its function calls never run: only the
 * allowlisted catalog language, rendered by Gatehouse, over catalog rows.
 */
import type { CellValue } from '../../engine/engine.ts';
import type { CatalogSession } from '../../catalog/functions.ts';
import { renderCatalogQuery } from '../../catalog/render.ts';
import { audited } from '../../kernel/audited.ts';
import { resultDigest, sqlFingerprint } from '../../kernel/digest.ts';
import { catalogDescribe, catalogRead } from '../../kernel/execute.ts';
import type { Runtime } from '../../kernel/runtime.ts';
import type { RequestMeta } from '../../kernel/types.ts';
import { visibleDatasets } from '../datasets/list.ts';

export interface CatalogRequest extends RequestMeta {
  readonly sql: string;
  /** The connection's declared purpose (null: every purpose the principal may use). */
  readonly purpose: string | null;
  /** What the catalog functions answer about the session (user, database, SHOW settings). */
  readonly session: CatalogSession;
  /** Text values of $1..$n (extended protocol), or null. */
  readonly params: readonly (string | null)[] | null;
  readonly timeoutMs: number;
}

export interface CatalogAnswer {
  readonly columns: readonly { readonly name: string; readonly type: string }[];
  readonly rows: readonly (readonly CellValue[])[];
  readonly auditId: string;
}

/** The catalog never needs long: a bound on top of the session's own timeout. */
const CATALOG_TIMEOUT_MS = 5_000;

export async function catalogQuery(rt: Runtime, req: CatalogRequest): Promise<CatalogAnswer> {
  const { value, auditId } = await audited(rt, req, 'catalog.query', { purpose: req.purpose, sqlFingerprint: sqlFingerprint(req.sql) }, async ({ state, entry, auth }) => {
    const rendered = renderCatalogQuery(req.sql, req.session, req.params);
    const views = await visibleDatasets(rt, state, auth.principal, req.purpose, req);
    entry.datasets = views.map((v) => v.name);
    const r = await catalogRead(rt.catalogs, views, rendered, Math.min(req.timeoutMs, CATALOG_TIMEOUT_MS));
    entry.rowsReturned = r.rows.length;
    entry.resultDigest = resultDigest(r.columns, r.rows);
    return r;
  });
  return { ...value, auditId };
}

/** The result columns of a catalog statement (extended-protocol Describe), audited as catalog.describe. */
export async function describeCatalogQuery(rt: Runtime, req: Omit<CatalogRequest, 'params' | 'timeoutMs'>): Promise<readonly { readonly name: string; readonly type: string }[] | null> {
  const { value } = await audited(rt, req, 'catalog.describe', { purpose: req.purpose, sqlFingerprint: sqlFingerprint(req.sql) }, async ({ state, entry, auth }) => {
    const rendered = renderCatalogQuery(req.sql, req.session, null);
    const views = await visibleDatasets(rt, state, auth.principal, req.purpose, req);
    entry.datasets = views.map((v) => v.name);
    entry.rowsReturned = 0;
    return catalogDescribe(rt.catalogs, views, rendered);
  });
  return value;
}
