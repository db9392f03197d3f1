/**
 * The messages of one secure-aggregation session (Bonawitz et al. 2017, Fig. 4, rounds 0–4,
 * with the ConsistencyCheck round of the actively secure variant) and the exact fields each
 * signature covers. Every message names its session and stage, so one from another session
 * or another stage does not verify; every message is signed by its sender's pinned Ed25519
 * node key, so the coordinator cannot forge or substitute one (it relays them).
 */
import type { KeyObject } from 'node:crypto';

export type Stage = 'advertise' | 'share' | 'masked' | 'consistency' | 'unmask';
export const STAGES: readonly Stage[] = ['advertise', 'share', 'masked', 'consistency', 'unmask'];

export interface SessionParams {
  /** Unique per round: binds every key, seed, share and signature to this round. */
  readonly session: string;
  /** Everyone invited, in any order. */
  readonly roster: readonly string[];
  /** Neighbourhood size k (SecAgg+); ≥ roster − 1 is the complete graph (SecAgg). */
  readonly degree: number;
  /** Shamir threshold t over the k + 1 holders (neighbours and self): 2t > k + 1 and t ≤ k + 1. */
  readonly threshold: number;
  /** Vector length d. */
  readonly length: number;
  /** Public seed of the neighbourhood graph. */
  readonly graphSeed: string;
}

/** The pinned identity keys of the roster (node keys from the federation section). */
export type IdentityKeys = ReadonlyMap<string, KeyObject>;

/** Round 0 — AdvertiseKeys: c_u^PK (share encryption) and s_u^PK (pairwise masks). */
export interface AdvertiseMsg {
  readonly session: string;
  readonly from: string;
  readonly cPk: Uint8Array;
  readonly sPk: Uint8Array;
  readonly sig: Uint8Array;
}
export const advertiseFields = (m: Omit<AdvertiseMsg, 'sig'>) => [m.session, 'advertise', m.from, m.cPk, m.sPk];

/** Round 1 — ShareKeys: Enc(c_uv, u‖v‖share(s_u^SK)‖share(b_u)) per neighbour, and H(b_u) so a wrong b is caught. */
export interface ShareMsg {
  readonly session: string;
  readonly from: string;
  readonly bCommit: Uint8Array;
  readonly shares: readonly { readonly to: string; readonly ct: Uint8Array }[];
  readonly sig: Uint8Array;
}
export const shareFields = (m: Omit<ShareMsg, 'sig'>) => [m.session, 'share', m.from, m.bCommit, ...m.shares.flatMap((s) => [s.to, s.ct])];

/** Round 2 — MaskedInputCollection: y_u = x_u + PRG(b_u) + Σ ±PRG(s_uv) mod 2^32. */
export interface MaskedMsg {
  readonly session: string;
  readonly from: string;
  readonly y: Uint32Array;
  readonly sig: Uint8Array;
}
/** The signature covers SHA-256(y), not the 4 MB vector twice. */
export const maskedFields = (m: { session: string; from: string; yDigest: Uint8Array }) => [m.session, 'masked', m.from, m.yDigest];

/** Round 3 — ConsistencyCheck: u signs the survivor set U3 it was shown. */
export interface ConsistencyMsg {
  readonly session: string;
  readonly from: string;
  readonly sig: Uint8Array;
}
export const consistencyFields = (session: string, from: string, survivors: readonly string[]) => [session, 'consistency', from, ...[...survivors].sort()];

/** Round 4 — Unmasking: for each neighbour v, a share of b_v (v survived) or of s_v^SK (v dropped) — never both. */
export interface UnmaskMsg {
  readonly session: string;
  readonly from: string;
  readonly shares: readonly { readonly of: string; readonly kind: 'b' | 's'; readonly share: Uint8Array }[];
  readonly sig: Uint8Array;
}
export const unmaskFields = (m: Omit<UnmaskMsg, 'sig'>) => [m.session, 'unmask', m.from, ...m.shares.flatMap((s) => [s.of, s.kind, s.share])];

/** What the coordinator sends with the unmasking request: U3 and the consistency signatures on it. */
export interface UnmaskRequest {
  readonly survivors: readonly string[];
  readonly signatures: readonly ConsistencyMsg[];
}
