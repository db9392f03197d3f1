/**
 * The mask kinds — the only list of them. The workspace loader parses masks here, the mask
 * transformer lowers them here, the renderers render them here, and `describeMask`, the JSON
 * Schema's mask definition (scripts/workspace-schema.ts) and the table in docs/masks.md are
 * derived from this list. A kind not listed here does not exist anywhere.
 */
import type { ColumnType, MaskSpec } from '../../model/types.ts';
import type { Expr } from '../ir.ts';
import type { Dialect } from '../render/sql.ts';
import type { JsonSchema, MaskKind, MaskScope, MaskYaml } from './kind.ts';
import { bucket } from './bucket.ts';
import { dateShift } from './date-shift.ts';
import { emailDomain } from './email-domain.ts';
import { initials } from './initials.ts';
import { keyedHash } from './keyed-hash.ts';
import { last4 } from './last4.ts';
import { nullMask } from './null.ts';
import { redact } from './redact.ts';
import { round } from './round.ts';
import { truncate } from './truncate.ts';

export const MASK_KINDS = [nullMask, redact, keyedHash, last4, emailDomain, truncate, round, bucket, initials, dateShift] as const;

type SpecOf<K> = K extends MaskKind<infer S> ? S : never;
/**
 * A parsed mask with its kind's own fields: one member per kind in MASK_KINDS. The model
 * carries masks as `MaskSpec` (a kind name); only this file narrows one to its kind's shape,
 * and every spec it narrows was made by that kind's own `parse`.
 */
export type KnownMaskSpec = SpecOf<(typeof MASK_KINDS)[number]>;
export type { MaskSpec };

const BY_KIND = new Map<string, MaskKind<KnownMaskSpec>>(MASK_KINDS.map((k) => [k.kind, k as unknown as MaskKind<KnownMaskSpec>]));

export function maskKind(spec: MaskSpec): MaskKind<KnownMaskSpec> {
  const k = BY_KIND.get(spec.kind);
  if (!k) throw new Error(`unknown mask kind ${spec.kind}`);
  return k;
}

/** The spec as its kind declares it (the kind's `parse` made it, so the shape is the kind's). */
function known(spec: MaskSpec): KnownMaskSpec {
  return spec as KnownMaskSpec;
}

/** Every YAML spelling, in registry order: plain words first, then one-key mappings. */
export function maskSpellings(): string[] {
  return [
    ...MASK_KINDS.flatMap((k) => k.words),
    ...MASK_KINDS.flatMap((k) => (k.mapping ? [`{${k.mapping.key}: ${k.mapping.arg}}`] : [])),
  ];
}

function orList(items: readonly string[]): string {
  return items.length < 2 ? items.join('') : `${items.slice(0, -1).join(', ')} or ${items.at(-1)}`;
}

/** The loader's message for a mask no kind accepts; it lists what is accepted. */
export function unknownMaskMessage(): string {
  return `unknown mask: use ${orList(maskSpellings())}`;
}

/**
 * The spec a YAML value denotes, or null when no kind accepts it. A mapping must have
 * exactly one key. (An absent or YAML-null mask is the loader's business: it means "no
 * mask", which the loader refuses to guess at.)
 */
export function parseMaskYaml(v: unknown): MaskSpec | null {
  let yaml: MaskYaml;
  if (typeof v === 'string') yaml = { form: 'word', word: v };
  else if (typeof v === 'object' && v !== null && !Array.isArray(v) && Object.keys(v).length === 1) {
    const [key, arg] = Object.entries(v)[0]!;
    yaml = { form: 'mapping', key, arg };
  } else return null;
  for (const k of MASK_KINDS) {
    const spec = (k as unknown as MaskKind<KnownMaskSpec>).parse(yaml);
    if (spec) return spec;
  }
  return null;
}

/** Why a mask cannot apply to a column type, or null if it can. */
export function maskTypeProblem(spec: MaskSpec, type: ColumnType): string | null {
  const allowed = maskKind(spec).appliesTo;
  if (allowed !== 'any' && !allowed.includes(type)) {
    return `mask "${spec.kind}" cannot apply to a ${type} column (it applies to ${allowed.join(', ')})`;
  }
  return null;
}

/** Short name for responses, audit entries and access reviews: `hash`, `truncate(year)`. */
export function describeMask(spec: MaskSpec): string {
  return maskKind(spec).describe(known(spec));
}

/** The type a masked column has. */
export function maskResultType(spec: MaskSpec, type: ColumnType): ColumnType {
  return maskKind(spec).resultType(type);
}

/** The IR expression that replaces the raw column inside the governed scan. */
export function lowerMask(spec: MaskSpec, arg: Expr, scope: MaskScope): Expr {
  return maskKind(spec).lower(known(spec), arg, scope);
}

/** SQL for a `mask` IR node in one dialect. */
export function renderMask(spec: MaskSpec, x: string, type: ColumnType, dialect: Dialect): string {
  return maskKind(spec).render(known(spec), x, type, dialect);
}

/** `$defs.mask` of docs/workspace.schema.json. */
export function maskJsonSchema(): JsonSchema {
  const mapped = MASK_KINDS.flatMap((k) => (k.mapping ? [k.mapping] : []));
  return {
    description: `A column mask: ${orList(maskSpellings().map((s) => (s.startsWith('{') ? s : `"${s}"`)))}. ` +
      'To null a column write the quoted string "null"; an empty (YAML null) mask is refused. The kinds are listed in docs/masks.md.',
    anyOf: [
      { enum: MASK_KINDS.flatMap((k) => k.words) },
      ...mapped.map((m) => ({ $ref: `#/$defs/mask/$defs/${m.key}` })),
    ],
    $defs: Object.fromEntries(mapped.map((m) => [m.key, {
      type: 'object', additionalProperties: false, required: [m.key], properties: { [m.key]: m.schema },
    }])),
  };
}
