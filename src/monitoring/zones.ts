/**
 * Source address → network zone, and the great-circle distance between zones, for the
 * impossible-travel rule. Zones are declared by the operator (monitoring.zones: CIDR blocks
 * with a location); an address in no zone has no location and is never "travelling".
 * Distance: the haversine formula on a sphere of radius 6371 km (R. W. Sinnott, "Virtues of
 * the Haversine", Sky and Telescope 68(2), 1984), accurate to ~0.5 % — far below what the
 * rule's speed threshold cares about.
 */
import type { Zone } from './config.ts';

interface Block { readonly base: number; readonly mask: number; readonly zone: Zone }

function ipv4(addr: string): number | null {
  // IPv4-mapped IPv6 ("::ffff:10.1.2.3") is how Node reports IPv4 clients on a dual-stack socket.
  const s = addr.startsWith('::ffff:') ? addr.slice(7) : addr;
  const parts = s.split('.');
  if (parts.length !== 4) return null;
  let n = 0;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p)) return null;
    const o = Number(p);
    if (o > 255) return null;
    n = n * 256 + o;
  }
  return n >>> 0;
}

export class ZoneMap {
  readonly #blocks: Block[] = [];
  readonly #cache = new Map<string, Zone | null>();

  constructor(zones: readonly Zone[]) {
    for (const zone of zones) {
      for (const c of zone.cidrs) {
        const [ip, bits] = c.split('/') as [string, string];
        const b = Number(bits);
        const mask = b === 0 ? 0 : (0xffffffff << (32 - b)) >>> 0;
        this.#blocks.push({ base: (ipv4(ip)! & mask) >>> 0, mask, zone });
      }
    }
    // Most specific block first: a /24 inside a /16 names its own zone.
    this.#blocks.sort((a, b) => b.mask - a.mask);
  }

  /** The zone an address belongs to, or null. */
  zoneOf(address: string): Zone | null {
    const hit = this.#cache.get(address);
    if (hit !== undefined) return hit;
    const n = ipv4(address);
    let z: Zone | null = null;
    if (n !== null) for (const b of this.#blocks) if (((n & b.mask) >>> 0) === b.base) { z = b.zone; break; }
    if (this.#cache.size >= 10_000) this.#cache.delete(this.#cache.keys().next().value!);
    this.#cache.set(address, z);
    return z;
  }
}

const RADIUS_KM = 6371;
const rad = (d: number): number => (d * Math.PI) / 180;

export function distanceKm(a: { lat: number; lon: number }, b: { lat: number; lon: number }): number {
  const dLat = rad(b.lat - a.lat);
  const dLon = rad(b.lon - a.lon);
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(rad(a.lat)) * Math.cos(rad(b.lat)) * Math.sin(dLon / 2) ** 2;
  return 2 * RADIUS_KM * Math.asin(Math.min(1, Math.sqrt(h)));
}
