/**
 * The registry in the forms people read: the mask definition of docs/workspace.schema.json
 * and the table of kinds in docs/masks.md. scripts/workspace-schema.ts writes them;
 * registry.test.ts fails when the committed files differ from what this produces, so the
 * schema and the docs cannot drift from the code.
 */
import { COLUMN_TYPES, type ColumnType } from '../../model/types.ts';
import { maskJsonSchema, MASK_KINDS, unknownMaskMessage } from './registry.ts';

export const SCHEMA_PATH = 'docs/workspace.schema.json';
export const MASKS_DOC_PATH = 'docs/masks.md';
export const TABLE_BEGIN = '<!-- mask kinds: generated from src/query/masks/registry.ts by `npx node scripts/workspace-schema.ts`; do not edit -->';
export const TABLE_END = '<!-- end of mask kinds -->';

/** The schema text with `$defs.mask` replaced by the registry's; everything else kept. */
export function schemaWithMasks(schemaText: string): string {
  const schema = JSON.parse(schemaText) as { $defs?: Record<string, unknown> };
  if (!schema.$defs || !('mask' in schema.$defs)) throw new Error(`${SCHEMA_PATH} has no $defs.mask to replace`);
  schema.$defs.mask = maskJsonSchema();
  // Non-ASCII as JSON \u escapes (four hex digits), as the file has always been written.
  return `${JSON.stringify(schema, null, 2).replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)}\n`;
}

function cell(s: string): string {
  return s.replace(/\|/g, '\\|');
}

/** "the column's" when a mask keeps the type, else the one type it yields. */
function resultTypes(types: readonly ColumnType[], f: (t: ColumnType) => ColumnType): string {
  if (types.every((t) => f(t) === t)) return 'the column\'s';
  const out = new Set(types.map(f));
  return out.size === 1 ? [...out][0]! : types.map((t) => `${t} → ${f(t)}`).join(', ');
}

/** The markdown table of mask kinds, one row per kind, in registry order. */
export function masksTable(): string {
  const rows = MASK_KINDS.map((k) => {
    const spellings = [...k.words.map((w) => `\`${w === 'null' ? '"null"' : w}\``), ...(k.mapping ? [`\`{${k.mapping.key}: ${k.mapping.arg}}\``] : [])];
    const types = k.appliesTo === 'any' ? 'any' : k.appliesTo.join(', ');
    const result = resultTypes(k.appliesTo === 'any' ? COLUMN_TYPES : k.appliesTo, (t) => k.resultType(t));
    return `| ${cell(spellings.join(' or '))} | \`${k.kind}\` | ${types} | ${result} | ${cell(k.doc.summary)} | ${cell(k.doc.example)} |`;
  });
  return [
    TABLE_BEGIN,
    '| in YAML | kind | column types | result type | what it does | before → after |',
    '|---|---|---|---|---|---|',
    ...rows,
    '',
    `Anything else is refused when the workspace loads: \`${unknownMaskMessage()}\`.`,
    TABLE_END,
  ].join('\n');
}

/** docs/masks.md with its generated table replaced by the current one. */
export function masksDocWithTable(docText: string): string {
  const a = docText.indexOf(TABLE_BEGIN), b = docText.indexOf(TABLE_END);
  if (a < 0 || b < a) throw new Error(`${MASKS_DOC_PATH} lacks the generated-table markers`);
  return docText.slice(0, a) + masksTable() + docText.slice(b + TABLE_END.length);
}
