/**
 * "Did you mean …?" for the names a caller types: datasets and purposes.
 *
 * Suggestions come only from what the caller's own `datasets` listing returned (the datasets
 * it may see and their purposes), so a hint never reveals a dataset it may not query.
 * Closeness is the Damerau–Levenshtein distance (optimal string alignment): one typo, one
 * swapped pair, or a missing plural `s` is a distance of 1.
 */

export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i]![j] = Math.min(d[i]![j]!, d[i - 2]![j - 2]! + 1);
    }
  }
  return d[a.length]![b.length]!;
}

/** The closest candidate within a third of the name's length (at least 1, at most 3 edits), or null. */
export function closest(name: string, candidates: Iterable<string>): string | null {
  const lower = name.toLowerCase();
  const limit = Math.min(3, Math.max(1, Math.floor(lower.length / 3)));
  let best: { c: string; d: number } | null = null;
  for (const c of new Set(candidates)) {
    if (c === name) continue;
    const d = editDistance(lower, c.toLowerCase());
    if (d <= limit && (!best || d < best.d || (d === best.d && c < best.c))) best = { c, d };
  }
  return best?.c ?? null;
}
