/**
 * Secondary (complementary) suppression: withhold further cells so that no withheld cell
 * can be computed from the visible cells and totals.
 *
 * Heuristic (the usual "at least two per line" rule, e.g. Hundepool et al., Statistical
 * Disclosure Control, Wiley 2012, §4.4; optimal cell suppression is NP-hard, Kelly 1990,
 * Kao 1996):
 *
 * 1. Line rule. A line is `sum(members) = total`. If exactly one of its nodes (members
 *    and total together) is hidden and the rest are known, the hidden one is that line's
 *    subtraction. So while some line has exactly one hidden node, hide one more node of
 *    that line: the one covering the fewest privacy units (least information lost),
 *    preferring, among equals, a node that also completes another line with a single
 *    hidden node, then the earliest. Zero-unit cells are never complements (an empty group
 *    is no secret, and hiding a zero beside a small cell only says the small cell equals
 *    the line's remainder); virtual totals and totals that are public anyway are not either.
 * 2. Attacker check. The line rule is necessary, not sufficient: a two-way pattern can
 *    satisfy it everywhere and still pin a cell through several lines at once (a
 *    suppressed cell bridging two cycles). So the full linear system is solved
 *    (recover.ts); while any withheld node is determined (or a margin absent from the
 *    table that covers fewer than `threshold` units: it describes a small group just as a
 *    cell does), the smallest visible candidate
 *    sharing a line with it is hidden and step 1 is repeated. Each round hides one more
 *    node, so this terminates.
 * 3. Dead end. If a node must be paired and no candidate is left (the greedy choices, or
 *    the table, leave none), every hideable node is hidden; since hiding more never
 *    determines more, a primary cell still determined then is determined by every pattern
 *    and the table is refused (SdcUnprotectable). Secondary nodes that remain determined
 *    are shown again (their values are implied anyway). Heavy loss, but only on dead ends.
 *
 * What it does not guarantee: a minimal pattern (it is greedy); protection against
 * interval disclosure (cells are non-negative: a withheld 3 and a withheld 9 whose line
 * remainder is 12 are each known to lie in 0…12, and an attacker who knows the 9 is a
 * complement, hence at least the threshold, bounds the 3 to 0…4; no protection interval
 * is enforced); protection across different tables (differencing), which this module
 * does not see.
 */
import { SdcUnprotectable } from './errors.ts';
import { determinedNodes } from './recover.ts';
import { isHidden, mustStayHidden, type Model } from './model.ts';

/** The greedy search hid a node with no candidate left to pair it: fall back. */
class DeadEnd extends Error {}

export function protect(model: Model): void {
  const linesOf = nodeLines(model);
  try {
    greedy(model, linesOf);
  } catch (e) {
    if (!(e instanceof DeadEnd)) throw e;
    hideEverything(model);
  }
}

function greedy(model: Model, linesOf: readonly number[][]): void {
  completeLines(model, linesOf);
  for (;;) {
    const determined = [...determinedNodes(model, null).keys()].filter((i) => mustStayHidden(model.nodes[i]!));
    if (determined.length === 0) return;
    const d = Math.min(...determined);
    const candidates = new Set<number>();
    for (const l of linesOf[d]!) for (const i of [...model.lines[l]!.members, model.lines[l]!.total]) candidates.add(i);
    const pick = choose(model, linesOf, [...candidates], -1);
    if (pick < 0) throw new DeadEnd();
    model.nodes[pick]!.state = 'secondary';
    completeLines(model, linesOf);
  }
}

/**
 * Last resort: hide every node that may be hidden. Hiding more never determines more, so
 * if a primary cell is still determined, no pattern protects it and the table is refused.
 * A secondary node that is still determined is revealed again: its value follows from
 * what is published, so showing it tells the attacker nothing new.
 */
function hideEverything(model: Model): void {
  for (const n of model.nodes) if (n.state === 'visible' && n.suppressible) n.state = 'secondary';
  const determined = [...determinedNodes(model, null).keys()];
  if (determined.some((i) => model.nodes[i]!.state === 'primary' || model.nodes[i]!.secret === true)) {
    throw new SdcUnprotectable('a withheld cell can be computed from totals that are public or obtainable by other queries, whatever else is withheld');
  }
  for (const i of determined) if (model.nodes[i]!.state === 'secondary') model.nodes[i]!.state = 'visible';
}

function nodeLines(model: Model): number[][] {
  const out: number[][] = model.nodes.map(() => []);
  model.lines.forEach((l, li) => {
    for (const i of l.members) out[i]!.push(li);
    out[l.total]!.push(li);
  });
  return out;
}

function hiddenCount(model: Model, li: number): number {
  const l = model.lines[li]!;
  let h = isHidden(model.nodes[l.total]!) ? 1 : 0;
  for (const i of l.members) if (isHidden(model.nodes[i]!)) h++;
  return h;
}

/** Step 1: until no line has exactly one hidden node (a virtual total alone hides nothing). */
function completeLines(model: Model, linesOf: readonly number[][]): void {
  let changed = true;
  while (changed) {
    changed = false;
    model.lines.forEach((line, li) => {
      const nodes = [...line.members, line.total];
      const hidden = nodes.filter((i) => isHidden(model.nodes[i]!));
      if (hidden.length !== 1 || model.nodes[hidden[0]!]!.virtual) return;
      const pick = choose(model, linesOf, nodes, li);
      if (pick < 0) throw new DeadEnd();
      model.nodes[pick]!.state = 'secondary';
      changed = true;
    });
  }
}

/** The visible, suppressible candidate losing least: fewest units, then pairing, then index. */
function choose(model: Model, linesOf: readonly number[][], candidates: readonly number[], currentLine: number): number {
  let best = -1;
  let bestPairs = false;
  for (const i of candidates) {
    const n = model.nodes[i]!;
    if (isHidden(n) || !n.suppressible) continue;
    const pairs = linesOf[i]!.some((li) => li !== currentLine && hiddenCount(model, li) === 1);
    if (best < 0) { best = i; bestPairs = pairs; continue; }
    const b = model.nodes[best]!;
    if (n.units < b.units || (n.units === b.units && pairs && !bestPairs) || (n.units === b.units && pairs === bestPairs && i < best)) {
      best = i;
      bestPairs = pairs;
    }
  }
  return best;
}
