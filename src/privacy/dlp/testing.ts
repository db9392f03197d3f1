/** Test helper: what the scanner concludes for one cell and one detector (requirements, then match). */
import { meetsRequirements, textFeatures } from './text-features.ts';
import type { Detector } from './types.ts';

export function finds(detector: Detector, text: string): boolean {
  return meetsRequirements(textFeatures(text), detector.requires) && detector.matches(text);
}
