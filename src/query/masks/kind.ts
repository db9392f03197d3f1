/**
 * What a mask kind is. A mask replaces a column's value where the dataset is read — inside
 * the governed scan — so every reference in the query (SELECT, WHERE, JOIN, GROUP BY,
 * ORDER BY, HAVING, windows, subqueries, CTEs) sees only the masked value (DESIGN.md,
 * invariant 3). Everything that differs between kinds lives in one `MaskKind` object per
 * file in this folder; `registry.ts` lists them, and the loader, the mask transformer, the
 * renderers, `describeMask`, the JSON Schema and docs/masks.md all read that list.
 * Adding a kind is one file, its test and one line in registry.ts.
 */
import type { ColumnType } from '../../model/types.ts';
import type { Expr } from '../ir.ts';
import type { Dialect } from '../render/sql.ts';

/** A mask as written in gatehouse.yaml: a plain word (`redact`) or a one-key mapping (`{round: 5}`). */
export type MaskYaml =
  | { readonly form: 'word'; readonly word: string }
  | { readonly form: 'mapping'; readonly key: string; readonly arg: unknown };

/** A JSON Schema fragment (draft 2020-12), as plain data. */
export type JsonSchema = { readonly [keyword: string]: unknown };

/** Where a mask is applied: what lowering may key a mask to. */
export interface MaskScope {
  readonly type: ColumnType;
  /** The requesting principal's id. */
  readonly principal: string;
  readonly dataset: string;
  readonly column: string;
}

/** Column types each group of masks applies to. */
export const NUMERIC_TYPES: readonly ColumnType[] = ['BIGINT', 'INTEGER', 'DOUBLE', 'DECIMAL'];
export const TEMPORAL_TYPES: readonly ColumnType[] = ['DATE', 'TIMESTAMP'];

export interface MaskKind<S extends { readonly kind: string }> {
  /** The spec's `kind`, as the IR and the audit entry name it. */
  readonly kind: S['kind'];
  /** Plain-word spellings this kind accepts in YAML (`year`, `month`), if any. */
  readonly words: readonly string[];
  /** The one-key mapping spelling (`{round: N}`), if any: its key, how docs write the argument, and its JSON Schema. */
  readonly mapping: { readonly key: string; readonly arg: string; readonly schema: JsonSchema } | null;
  /** The spec a YAML mask denotes, or null when it is not this kind (or its argument is invalid). */
  parse(yaml: MaskYaml): S | null;
  /** Column types the mask applies to. */
  readonly appliesTo: readonly ColumnType[] | 'any';
  /** The type of the masked value, for a column of `type`. */
  resultType(type: ColumnType): ColumnType;
  /** Short human name for responses, audit entries and access reviews: `truncate(year)`. */
  describe(spec: S): string;
  /** One sentence for docs/masks.md and an example `before → after`. */
  readonly doc: { readonly summary: string; readonly example: string };
  /**
   * The IR expression that replaces the raw column `arg` in the governed scan. Most kinds
   * lower to a `mask` node rendered by `render`; a kind keyed to the request (date shift)
   * resolves that here, so rendering stays a pure function of the node.
   */
  lower(spec: S, arg: Expr, scope: MaskScope): Expr;
  /** SQL for one dialect; `x` is the rendered column, `type` its declared type. */
  render(spec: S, x: string, type: ColumnType, dialect: Dialect): string;
}

/** The usual lowering: a `mask` node over the raw column, rendered by the kind. */
export function maskNode<S extends { readonly kind: string }>(spec: S, arg: Expr, type: ColumnType): Expr {
  // The IR's mask node carries the registry's spec union; each kind's spec is one member.
  return { kind: 'mask', mask: spec as never, arg, type };
}

/** Picks the SQL for the dialect being rendered; a dialect a kind does not know is refused. */
export function perDialect(dialect: Dialect, kind: string, sql: { readonly duckdb: () => string; readonly postgres: () => string; readonly trino: () => string }): string {
  const f = (sql as Record<string, (() => string) | undefined>)[dialect.name];
  if (!f) throw new Error(`mask ${kind} has no rendering for the ${dialect.name} dialect`);
  return f();
}

/** A one-key mapping whose value is a finite number > 0 (`{round: N}`, `{bucket: N}`). */
export function positiveNumberArg(yaml: MaskYaml, key: string): number | null {
  if (yaml.form !== 'mapping' || yaml.key !== key) return null;
  const v = yaml.arg;
  return typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : null;
}

export function isWord(yaml: MaskYaml, word: string): boolean {
  return yaml.form === 'word' && yaml.word === word;
}
