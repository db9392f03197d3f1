/**
 * A SQL editor with syntax highlighting: a transparent <textarea> over a <pre> of coloured
 * tokens from a small tokenizer (keywords, strings, numbers, comments, identifiers). A full
 * editor (CodeMirror, Monaco) would multiply the bundle for what one regular expression does.
 */
import { useRef, type ReactNode } from 'react';

const KEYWORDS = new Set(('select from where group by order having limit offset join left right inner outer full cross on as and or not in is null ' +
  'like ilike between case when then else end distinct union all intersect except with count sum avg min max asc desc true false over partition cast filter').split(' '));
const TOKEN = /(--[^\n]*)|('(?:[^']|'')*'?)|("(?:[^"]|"")*"?)|(\b\d+(?:\.\d+)?\b)|([A-Za-z_][A-Za-z0-9_]*)|(\s+)|(.)/g;

export function highlight(sql: string): ReactNode[] {
  const out: ReactNode[] = [];
  let m: RegExpExecArray | null;
  let i = 0;
  TOKEN.lastIndex = 0;
  while ((m = TOKEN.exec(sql)) !== null) {
    const [t, comment, str, ident, num, word] = m;
    const cls = comment ? 'tk-comment' : str ? 'tk-string' : ident ? 'tk-ident' : num ? 'tk-number' : word && KEYWORDS.has(word.toLowerCase()) ? 'tk-keyword' : null;
    out.push(cls ? <span key={i++} className={cls}>{t}</span> : t);
  }
  return out;
}

export function SqlEditor(props: { value: string; onChange: (v: string) => void; onRun: () => void; label: string }) {
  const pre = useRef<HTMLPreElement>(null);
  return (
    <div className="editor">
      <pre ref={pre} aria-hidden="true">{highlight(props.value)}{'\n'}</pre>
      <textarea
        aria-label={props.label} spellCheck={false} value={props.value}
        onChange={(e) => props.onChange(e.target.value)}
        onScroll={(e) => { if (pre.current) { pre.current.scrollTop = e.currentTarget.scrollTop; pre.current.scrollLeft = e.currentTarget.scrollLeft; } }}
        onKeyDown={(e) => { if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) { e.preventDefault(); props.onRun(); } }}
      />
    </div>
  );
}
