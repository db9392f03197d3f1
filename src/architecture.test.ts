/**
 * The dependency rules of docs/architecture.md, checked on the source itself:
 * imports between the top-level folders of src/ (type imports too) form no cycle, and the faces
 * (server, wire, cli) reach the rest only through the façade and the shared types.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';

const SRC = resolve(import.meta.dirname);

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    if (statSync(p).isDirectory()) return files(p);
    return n.endsWith('.ts') && !n.endsWith('.test.ts') && !p.includes(`${sep}testing${sep}`) ? [p] : [];
  });
}

/**
 * Every import of a file: static, dynamic and re-exports, and type-only ones too (`import
 * type`, `import { type A }`, `import('…').T` in a type position). A type import is erased
 * at run time but still ties the folders' designs together, so it counts.
 */
export function imports(source: string): string[] {
  const out: string[] = [];
  const text = source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
  for (const m of text.matchAll(/^\s*(?:import|export)\s[^;]*?\sfrom\s+'([^']+)'/gm)) out.push(m[1]!);
  for (const m of text.matchAll(/^\s*import\s+'([^']+)'/gm)) out.push(m[1]!);
  for (const m of text.matchAll(/import\(\s*'([^']+)'\s*\)/g)) out.push(m[1]!);
  return out;
}

function topOf(file: string): string {
  return relative(SRC, file).split(sep)[0]!;
}

export function folderGraph(): Map<string, Map<string, string>> {
  const graph = new Map<string, Map<string, string>>();
  for (const f of files(SRC)) {
    const from = topOf(f);
    for (const spec of imports(readFileSync(f, 'utf8'))) {
      if (!spec.startsWith('.')) continue;
      const to = topOf(resolve(dirname(f), spec));
      if (to === from || to.startsWith('..')) continue;
      if (!graph.has(from)) graph.set(from, new Map());
      if (!graph.get(from)!.has(to)) graph.get(from)!.set(to, `${relative(SRC, f)} → ${spec}`);
    }
  }
  return graph;
}

/** Every cycle's folders, found with Tarjan's strongly connected components. */
function cycles(graph: Map<string, Map<string, string>>): string[][] {
  let index = 0;
  const idx = new Map<string, number>(), low = new Map<string, number>(), stack: string[] = [], on = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string): void => {
    idx.set(v, index); low.set(v, index); index++; stack.push(v); on.add(v);
    for (const w of graph.get(v)?.keys() ?? []) {
      if (!idx.has(w)) { visit(w); low.set(v, Math.min(low.get(v)!, low.get(w)!)); } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const scc: string[] = [];
      let w: string;
      do { w = stack.pop()!; on.delete(w); scc.push(w); } while (w !== v);
      if (scc.length > 1) out.push(scc.sort());
    }
  };
  for (const v of graph.keys()) if (!idx.has(v)) visit(v);
  return out;
}

test('imports between the top-level folders of src/, type imports included, form no cycle', () => {
  const graph = folderGraph();
  const found = cycles(graph);
  const explain = found.map((scc) => scc.flatMap((a) => scc.filter((b) => graph.get(a)?.has(b)).map((b) => `  ${a} → ${b}: ${graph.get(a)!.get(b)}`)).join('\n'));
  assert.deepEqual(found, [], `import cycles between folders:\n${explain.join('\n\n')}`);
});

test('the cycle check sees a cycle when one is there (it reads static, dynamic, re-export and type imports)', () => {
  assert.deepEqual(imports("import { a } from './x.ts';\nimport type { B } from './y.ts';\nexport { c } from './z.ts';\nconst m = await import('./w.ts');\nimport { type D } from './v.ts';\ntype T = import('./u.ts').T;\nexport type { E } from './t.ts';"), ['./x.ts', './y.ts', './z.ts', './v.ts', './t.ts', './w.ts', './u.ts']);
  const g = new Map([['a', new Map([['b', 'a/x.ts → ../b/y.ts']])], ['b', new Map([['a', 'b/y.ts → ../a/x.ts']])]]);
  assert.deepEqual(cycles(g), [['a', 'b']]);
});

test('the faces (server, wire, cli) reach the path only through the façade, the kernel types and the node root', () => {
  const faces = new Set(['server', 'wire', 'cli']);
  const forbidden = new Set(['engine', 'state', 'sql', 'kernel', 'operations', 'policy']);
  const known = new Set<string>();
  const graph = folderGraph();
  const bad: string[] = [];
  for (const face of faces) for (const [to, why] of graph.get(face) ?? []) if (forbidden.has(to) && !known.has(`${face} → ${to}`)) bad.push(`${face} → ${to}: ${why}`);
  for (const k of known) {
    const [a, b] = k.split(' → ') as [string, string];
    assert.ok(graph.get(a)?.has(b), `the known edge ${k} is gone: remove it from the exceptions`);
  }
  assert.deepEqual(bad, [], 'a face reaches an engine, a store, the policy engine or an operation directly');
});

test('only src/engine opens a DuckDB instance or a PostgreSQL connection; nothing else imports their drivers', () => {
  // Query engines and the file writer (src/engine/file-writer.ts: Gatehouse's own fixed SQL that
  // writes the demo's Parquet, ingested datasets and erasure copies) live in src/engine; src/state
  // and src/sql open Gatehouse's own stores, not an engine. Anything else would be a second path.
  const opened: string[] = [];
  for (const f of files(SRC)) {
    const rel = relative(SRC, f);
    if (rel.startsWith(`engine${sep}`) || rel.startsWith(`state${sep}`) || rel.startsWith(`sql${sep}`)) continue;
    const text = readFileSync(f, 'utf8');
    if (/DuckDBInstance|new pg\.Pool|new Pool\(|new pg\.Client|new Client\(/.test(text) || /^import (?!type )[^;]*from '(@duckdb\/node-api|pg)'/m.test(text)) opened.push(rel);
  }
  assert.deepEqual(opened, [], 'a DuckDB instance or a PostgreSQL connection opened outside src/engine would be a second path beside the executor');
});
