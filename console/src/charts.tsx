/**
 * Charts drawn as SVG by hand (bars with error bars, a time series, a gauge): a charting
 * library would weigh more than the whole console. Every chart has a title and a text
 * alternative (role="img" + aria-label) so it reads without sight.
 */
export interface Bar { readonly label: string; readonly value: number; readonly low?: number | null; readonly high?: number | null }

const fmt = (n: number): string => Math.abs(n) >= 1000 ? n.toFixed(0) : Number(n.toPrecision(4)).toString();

export function BarChart(props: { title: string; bars: readonly Bar[]; unit?: string }) {
  const bars = props.bars.slice(0, 40);
  const W = 640; const H = 240; const L = 56; const B = 56;
  const max = Math.max(1e-9, ...bars.map((b) => Math.max(b.value, b.high ?? b.value)));
  const min = Math.min(0, ...bars.map((b) => Math.min(b.value, b.low ?? b.value)));
  const y = (v: number) => 10 + (H - B - 10) * (1 - (v - min) / (max - min));
  const bw = (W - L - 10) / Math.max(1, bars.length);
  const desc = bars.map((b) => `${b.label}: ${fmt(b.value)}${b.low != null && b.high != null ? ` (95% interval ${fmt(b.low)} to ${fmt(b.high)})` : ''}`).join('; ');
  return (
    <figure className="chart">
      <figcaption>{props.title}</figcaption>
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-label={`${props.title}: ${desc}`}>
        <line x1={L} x2={W - 10} y1={y(0)} y2={y(0)} className="axis" />
        <text x={L - 6} y={y(max) + 4} textAnchor="end" className="tick">{fmt(max)}</text>
        <text x={L - 6} y={y(0) + 4} textAnchor="end" className="tick">{fmt(0)}</text>
        {bars.map((b, i) => {
          const x = L + i * bw;
          return (
            <g key={i}>
              <rect x={x + bw * 0.15} width={bw * 0.7} y={Math.min(y(b.value), y(0))} height={Math.abs(y(0) - y(b.value))} className="bar" />
              {b.low != null && b.high != null && (
                <g className="errbar" data-testid="error-bar">
                  <line x1={x + bw / 2} x2={x + bw / 2} y1={y(b.low)} y2={y(b.high)} />
                  <line x1={x + bw * 0.3} x2={x + bw * 0.7} y1={y(b.low)} y2={y(b.low)} />
                  <line x1={x + bw * 0.3} x2={x + bw * 0.7} y1={y(b.high)} y2={y(b.high)} />
                </g>
              )}
              <text x={x + bw / 2} y={H - B + 14} textAnchor="end" transform={`rotate(-35 ${x + bw / 2} ${H - B + 14})`} className="tick">{b.label.slice(0, 14)}</text>
            </g>
          );
        })}
      </svg>
    </figure>
  );
}

export function LineChart(props: { title: string; points: readonly { label: string; value: number }[] }) {
  const W = 640; const H = 200; const L = 50; const B = 40;
  const pts = props.points;
  const max = Math.max(1, ...pts.map((p) => p.value));
  const x = (i: number) => L + (W - L - 10) * (pts.length <= 1 ? 0.5 : i / (pts.length - 1));
  const y = (v: number) => 10 + (H - B - 10) * (1 - v / max);
  return (
    <figure className="chart">
      <figcaption>{props.title}</figcaption>
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-label={`${props.title}: ${pts.map((p) => `${p.label} ${fmt(p.value)}`).join('; ')}`}>
        <line x1={L} x2={W - 10} y1={y(0)} y2={y(0)} className="axis" />
        <text x={L - 6} y={y(max) + 4} textAnchor="end" className="tick">{fmt(max)}</text>
        <polyline className="line" points={pts.map((p, i) => `${x(i)},${y(p.value)}`).join(' ')} />
        {pts.map((p, i) => <circle key={i} cx={x(i)} cy={y(p.value)} r={3} className="dot" />)}
        {pts.length > 0 && <text x={x(0)} y={H - 12} className="tick">{pts[0]!.label}</text>}
        {pts.length > 1 && <text x={x(pts.length - 1)} y={H - 12} textAnchor="end" className="tick">{pts[pts.length - 1]!.label}</text>}
      </svg>
    </figure>
  );
}

/** A budget gauge: spent of total as an arc, with the numbers in text beside it. */
export function Gauge(props: { label: string; spent: number; total: number }) {
  const f = props.total > 0 ? Math.min(1, Math.max(0, props.spent / props.total)) : 0;
  const a = Math.PI * (1 - f);
  const r = 50;
  return (
    <div className="gauge">
      <svg viewBox="0 0 120 70" role="img" aria-label={`${props.label}: ${fmt(props.spent)} of ${fmt(props.total)} spent`}>
        <path d={`M10,60 A${r},${r} 0 0 1 110,60`} className="gauge-track" />
        {f > 0 && <path d={`M10,60 A${r},${r} 0 0 1 ${60 + r * Math.cos(a)},${60 - r * Math.sin(a)}`} className="gauge-fill" />}
      </svg>
      <div>{props.label}<br /><strong>{fmt(props.total - props.spent)}</strong> of {fmt(props.total)} left</div>
    </div>
  );
}
