/**
 * Benchmark (issue 4): per-request identity overhead — token verification + attribute
 * resolution — goal p50 ≤ 100 µs.
 *
 * A small demo workspace (2,000 patients) with the served demo's `identity:` section (MFA
 * required for the research contractors, elevation role claims-auditor), opened as
 * a node by `startNode({ workspaceDir, auditDir, demo: true })` (src/node/start.ts). Built-in users `rhea` (contractor:
 * TOTP enrolled, session with amr pwd+otp) and `ada` (analyst: password session, and her
 * workspace API key) are set up through the Gatehouse's own routes (createUser, enrolTotp,
 * confirmTotp, login).
 *
 * Measured, each after warm-up, in interleaved rounds (per-call timing with
 * process.hrtime.bigint; the timer's own cost is recorded):
 *  1. The identity step alone, calling the libraries the request path calls, in the same
 *     way as `Gatehouse#authenticate` (src/pipeline/gatehouse.ts):
 *     - API key: `apiKeyDigest` (SHA-256) + map lookup + `timingSafeEqual` + MFA-group check,
 *       then `#withElevations` (the demo configures an elevation role, so the path reads the
 *       active grants from elevation.sqlite on every request);
 *     - session token: `looksLikeJwt` + `IdentityService.verify` (SessionService.verify +
 *       UserStore.status) + principal lookup + MFA rule + `#withElevations`. The service is
 *       opened exactly as the Gatehouse opens it (`IdentityService.open({ stateDir, demo:
 *       true, sessionTtlSec: 900 })`) on the same state directory.
 *  2. Its parts: SessionService.verify, UserStore.status, ElevationStore.activeElevations;
 *     inside verify: the bare Ed25519 signature check (synchronous node:crypto, and the
 *     WebCrypto `crypto.subtle.verify` jose itself calls), base64url + JSON parsing of
 *     header and payload, `jose.jwtVerify` with the key in hand (KeyObject, as the
 *     keyring holds it, and an imported CryptoKey), and the
 *     `PRAGMA data_version` read of the revocation check (on a second connection).
 *  3. End to end in process: `gh.query` of a tiny query with ada's API key, ada's session
 *     token and rhea's MFA session token; the difference between ada's two is what a
 *     session costs over an API key on the whole path.
 *
 *   npx node bench/identity.ts [--quick]
 */
import { createHash, createPublicKey, timingSafeEqual, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { isMain, isQuick, log, machineInfo, round, summarize, writeResult, type BenchResult, type Summary } from './run.ts';

const NAME = 'identity';
const PASSWORD = 'correct horse battery staple 42';
const GOAL_US = 100;

type Sync = () => unknown;
type Async = () => Promise<unknown>;

/** Per-call durations in µs. */
function timeSync(n: number, fn: Sync, out: number[]): void {
  for (let i = 0; i < n; i++) {
    const t = process.hrtime.bigint();
    fn();
    out.push(Number(process.hrtime.bigint() - t) / 1000);
  }
}
async function timeAsync(n: number, fn: Async, out: number[]): Promise<void> {
  for (let i = 0; i < n; i++) {
    const t = process.hrtime.bigint();
    await fn();
    out.push(Number(process.hrtime.bigint() - t) / 1000);
  }
}

/**
 * Runs every case `warmup` times, then `rounds` rounds of `perRound` calls of each case in
 * turn (interleaved, so drift in machine load spreads over all cases). µs summaries.
 */
async function measure(cases: Record<string, Sync | Async>, o: { warmup: number; rounds: number; perRound: number; async: readonly string[] }, label: string): Promise<Record<string, Summary>> {
  const samples: Record<string, number[]> = Object.fromEntries(Object.keys(cases).map((k) => [k, []]));
  const scratch: number[] = [];
  for (const [k, fn] of Object.entries(cases)) {
    if (o.async.includes(k)) await timeAsync(o.warmup, fn as Async, scratch); else timeSync(o.warmup, fn as Sync, scratch);
  }
  for (let r = 0; r < o.rounds; r++) {
    for (const [k, fn] of Object.entries(cases)) {
      if (o.async.includes(k)) await timeAsync(o.perRound, fn as Async, samples[k]!); else timeSync(o.perRound, fn as Sync, samples[k]!);
    }
    log(NAME, `${label}: round ${r + 1}/${o.rounds}`);
  }
  return Object.fromEntries(Object.entries(samples).map(([k, s]) => [k, summarize(s, 2)]));
}

export async function runIdentityBench(quick: boolean): Promise<BenchResult> {
  const started = performance.now();
  const { createDemoWorkspace } = await import('../src/demo/workspace.ts');
  const { startNode } = await import('../src/node/start.ts');
  const { loadWorkspace } = await import('../src/workspace/validate.ts');
  const { apiKeyDigest } = await import('../src/identity/digest.ts');
  const { IdentityService, looksLikeJwt } = await import('../src/identity/service.ts');
  const { generateTotp, totpStep } = await import('../src/identity/totp.ts');
  const { jwtVerify } = await import('jose');

  const micro = { warmup: quick ? 300 : 3_000, rounds: quick ? 2 : 5, perRound: quick ? 500 : 4_000 };
  const e2e = { warmup: quick ? 100 : 500, rounds: quick ? 2 : 5, perRound: quick ? 250 : 1_000 };

  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-bench-identity-'));
  const wsDir = join(dir, 'ws');
  const stateDir = join(wsDir, 'state');
  const demo = await createDemoWorkspace(wsDir, { patients: 2_000, encountersPerPatient: 2, identity: true });
  const node = await startNode({ workspaceDir: wsDir, auditDir: join(dir, 'audit'), demo: true });
  const gh = node.gatehouse;
  let svc: Awaited<ReturnType<typeof IdentityService.open>> | null = null;
  let side: DatabaseSync | null = null;
  let usersDb: DatabaseSync | null = null;
  const figures: Record<string, unknown> = { patients: 2_000, micro, e2e };
  const notes: string[] = [];
  try {
    // ---- users, TOTP, sessions, through the Gatehouse's own routes -----------------------
    const meta = { credential: null, source: '127.0.0.1', channel: 'bench' } as const;
    await gh.createUser({ ...meta, admin: 'bench-admin' }, 'rhea', PASSWORD);
    await gh.createUser({ ...meta, admin: 'bench-admin' }, 'ada', PASSWORD);
    const enrolled = await gh.enrolTotp(meta, { principal: 'rhea', password: PASSWORD });
    const code = (offset: number): Promise<string> => generateTotp(enrolled.secret, { now: (totpStep() + offset) * 30_000 });
    await gh.confirmTotp(meta, { principal: 'rhea', password: PASSWORD, code: await code(-1) });
    const rheaLogin = await gh.login(meta, { principal: 'rhea', password: PASSWORD, code: await code(0) });
    const adaLogin = await gh.login(meta, { principal: 'ada', password: PASSWORD });
    if (!rheaLogin.mfa) throw new Error('rhea\'s session should carry MFA');
    const rheaToken = rheaLogin.accessToken;
    const adaToken = adaLogin.accessToken;
    const adaKey = demo.keys.ada;
    figures.tokenBytes = rheaToken.length;

    // ---- the libraries the path uses, opened as the Gatehouse opens them -----------------
    const loaded = await loadWorkspace(wsDir);
    const ws = loaded.workspace;
    const keyIndex = new Map<string, (typeof ws.principals extends ReadonlyMap<string, infer P> ? P : never)>();
    for (const p of ws.principals.values()) for (const k of p.apiKeySha256) keyIndex.set(k, p);
    const mfaGroups = ws.identity?.mfaRequiredForGroups ?? [];
    const roles = ws.identity?.elevationRoles ?? {};
    if (mfaGroups.length === 0 || Object.keys(roles).length === 0) throw new Error('the demo workspace was expected to require MFA and configure an elevation role');
    svc = await IdentityService.open({ stateDir, demo: true, sessionTtlSec: (ws.identity?.sessionTtlMinutes ?? 15) * 60 });
    const ids = svc;
    const elevations = ids.elevation(() => ({
      roles: Object.keys(roles), maxMinutes: 10080,
      isApprover: (a, r) => { const p = ws.principals.get(a); return !!p && !!roles[r] && p.groups.some((g) => roles[r]!.approvers.includes(g)); },
      canBreakGlass: (_p, r) => roles[r]?.breakGlass === true,
    }));
    type P = NonNullable<ReturnType<typeof ws.principals.get>>;
    const mfaRequired = (p: P): boolean => p.groups.some((g) => mfaGroups.includes(g));
    // #withElevations, as the path runs it when the workspace configures elevation roles.
    const withElevations = async (p: P): Promise<P> => {
      if (Object.keys(ws.identity?.elevationRoles ?? {}).length === 0) return p;
      const active = await elevations.activeElevations(p.id);
      return active.length === 0 ? p : { ...p, groups: [...p.groups, ...active.map((g) => `elevated:${g.role}`)] };
    };
    const apiKeyAuth = (credential: string): P => {
      if (looksLikeJwt(credential)) throw new Error('unexpected');
      const digest = apiKeyDigest(credential);
      const p = keyIndex.get(digest);
      if (!p || !p.apiKeySha256.some((k) => timingSafeEqual(Buffer.from(k, 'hex'), Buffer.from(digest, 'hex')))) throw new Error('API key refused');
      if (mfaRequired(p)) throw new Error('MFA required');
      return p;
    };
    const sessionAuth = async (credential: string, elevate: boolean): Promise<P> => {
      if (!looksLikeJwt(credential)) throw new Error('unexpected');
      const who = await ids.verify(credential);
      const p = ws.principals.get(who.principalId);
      if (!p) throw new Error('no principal');
      if (mfaRequired(p) && !who.amr.includes('otp')) throw new Error('MFA required');
      return elevate ? withElevations(p) : p;
    };
    // Sanity: both credentials resolve to the expected principals.
    if (apiKeyAuth(adaKey).id !== 'ada' || (await sessionAuth(rheaToken, true)).id !== 'rhea' || (await sessionAuth(adaToken, true)).id !== 'ada') throw new Error('identity resolution gave the wrong principal');

    // Pieces of SessionService.verify, done by hand with the same key and options.
    const jwk = ids.sessions.jwks().keys.find((k) => k.kid === JSON.parse(Buffer.from(rheaToken.split('.')[0]!, 'base64url').toString('utf8')).kid);
    if (!jwk) throw new Error('the token\'s key is not in the JWKS');
    const pub: KeyObject = createPublicKey({ key: jwk as import('node:crypto').JsonWebKey, format: 'jwk' });
    const [h64, p64, s64] = rheaToken.split('.') as [string, string, string];
    const signingInput = Buffer.from(`${h64}.${p64}`, 'ascii');
    const signature = Buffer.from(s64, 'base64url');
    if (!cryptoVerify(null, signingInput, pub, signature)) throw new Error('Ed25519 check failed on a good token');
    const payload = JSON.parse(Buffer.from(p64, 'base64url').toString('utf8')) as { iss: string; aud: string };
    const joseOptions = { algorithms: ['EdDSA'], issuer: payload.iss, audience: payload.aud, typ: 'at+jwt', clockTolerance: 0, requiredClaims: ['sub', 'sid', 'iat', 'nbf', 'exp', 'amr'] };
    await jwtVerify(rheaToken, pub, joseOptions);
    // jose verifies through WebCrypto (crypto.subtle.verify: an async job on the thread pool).
    const cryptoKey = await crypto.subtle.importKey('jwk', jwk as import('node:crypto').webcrypto.JsonWebKey, { name: 'Ed25519' }, false, ['verify']);
    if (!(await crypto.subtle.verify('Ed25519', cryptoKey, signature, signingInput))) throw new Error('WebCrypto Ed25519 check failed on a good token');
    side = new DatabaseSync(join(stateDir, 'sessions.sqlite'), { readOnly: true });
    const dataVersion = side.prepare('PRAGMA data_version');
    usersDb = new DatabaseSync(join(stateDir, 'users.sqlite'), { readOnly: true });
    const bareUser = usersDb.prepare('SELECT disabled FROM users WHERE principal_id = ?');

    // Timer floor: an empty call between two hrtime reads.
    const floor = await measure({ empty: () => undefined }, { ...micro, async: [] }, 'timer');
    figures.timerFloorUs = floor.empty;

    // ---- 1. the identity step per credential kind ----------------------------------------
    const step = await measure({
      apiKey: () => apiKeyAuth(adaKey),
      apiKeyWithElevations: () => withElevations(apiKeyAuth(adaKey)),
      sessionMfa: () => sessionAuth(rheaToken, false),
      sessionMfaWithElevations: () => sessionAuth(rheaToken, true),
      sessionPasswordOnlyWithElevations: () => sessionAuth(adaToken, true),
    }, { ...micro, async: ['apiKeyWithElevations', 'sessionMfa', 'sessionMfaWithElevations', 'sessionPasswordOnlyWithElevations'] }, 'identity step');
    figures.identityStepUs = step;

    // ---- 2. its parts ------------------------------------------------------------------
    const parts = await measure({
      identityServiceVerify: () => ids.verify(rheaToken),
      sessionServiceVerify: () => ids.sessions.verify(rheaToken),
      userStoreStatus: () => ids.users.status('rhea'),
      activeElevations: () => elevations.activeElevations('rhea'),
      joseJwtVerify: () => jwtVerify(rheaToken, pub, joseOptions),
      joseJwtVerifyCryptoKey: () => jwtVerify(rheaToken, cryptoKey, joseOptions),
      ed25519VerifyWebCrypto: () => crypto.subtle.verify('Ed25519', cryptoKey, signature, signingInput),
      ed25519VerifyNodeSync: () => cryptoVerify(null, signingInput, pub, signature),
      base64urlJsonParse: () => { JSON.parse(Buffer.from(h64, 'base64url').toString('utf8')); return JSON.parse(Buffer.from(p64, 'base64url').toString('utf8')); },
      pragmaDataVersion: () => dataVersion.get(),
      bareUserRowSelect: () => bareUser.get('rhea'),
      sha256Digest: () => apiKeyDigest(adaKey),
      looksLikeJwt: () => looksLikeJwt(rheaToken),
    }, { ...micro, async: ['identityServiceVerify', 'sessionServiceVerify', 'userStoreStatus', 'joseJwtVerify', 'joseJwtVerifyCryptoKey', 'ed25519VerifyWebCrypto'] }, 'parts');
    figures.partsUs = parts;

    // ---- 3. end to end in process --------------------------------------------------------
    let sql = 'SELECT 1';
    const q = (credential: string, purpose: string) => gh.query({ credential, sql, purpose, source: '127.0.0.1', channel: 'bench' });
    try { await q(adaKey, 'operations'); await q(rheaToken, 'research'); } catch (err) {
      notes.push(`"SELECT 1" was refused (${(err as { code?: string }).code ?? String(err)}); the end-to-end cases use "SELECT count(*) AS n FROM claims" instead`);
      sql = 'SELECT count(*) AS n FROM claims';
      await q(adaKey, 'operations'); await q(rheaToken, 'research');
    }
    figures.e2eSql = sql;
    const auditBefore = node.audit.size;
    const endToEnd = await measure({
      adaApiKey: () => q(adaKey, 'operations'),
      adaSession: () => q(adaToken, 'operations'),
      rheaMfaSession: () => q(rheaToken, 'research'),
    }, { ...e2e, async: ['adaApiKey', 'adaSession', 'rheaMfaSession'] }, 'gh.query');
    figures.endToEndUs = endToEnd;
    figures.endToEndAuditEntries = node.audit.size - auditBefore;
    figures.endToEndSessionMinusApiKeyUs = {
      p50: round(endToEnd.adaSession!.p50 - endToEnd.adaApiKey!.p50, 2),
      p99: round(endToEnd.adaSession!.p99 - endToEnd.adaApiKey!.p99, 2),
      mean: round(endToEnd.adaSession!.mean - endToEnd.adaApiKey!.mean, 2),
    };
    figures.identityShareOfInProcessQueryP50 = {
      apiKey: round(step.apiKeyWithElevations!.p50 / endToEnd.adaApiKey!.p50, 4),
      sessionMfa: round(step.sessionMfaWithElevations!.p50 / endToEnd.rheaMfaSession!.p50, 4),
    };
  } finally {
    side?.close();
    usersDb?.close();
    svc?.close();
    await node.close();
    rmSync(dir, { recursive: true, force: true });
  }
  figures.elapsedS = round((performance.now() - started) / 1000, 1);

  const step = figures.identityStepUs as Record<string, Summary>;
  const parts = figures.partsUs as Record<string, Summary>;
  const worst = step.sessionMfaWithElevations!;
  const key = step.apiKeyWithElevations!;
  const dominant = (['sessionServiceVerify', 'userStoreStatus', 'activeElevations'] as const)
    .map((k) => [k, parts[k]!.p50] as const).sort((a, b) => b[1] - a[1]);
  figures.dominantPartP50 = Object.fromEntries(dominant);
  notes.push(
    'µs per call; each per-call figure includes one process.hrtime.bigint pair (timerFloorUs) and, for async calls, one await.',
    'activeElevations is part of the path because the demo configures an elevation role; without one, #withElevations returns at once.',
    'pragmaDataVersion and bareUserRowSelect run on separate read-only connections: they show what one sqlite read costs, not code the path runs as such.',
  );
  return {
    name: NAME, date: new Date().toISOString(), quick, machine: machineInfo(), figures, notes,
    goals: {
      identityOverheadP50: {
        goal: `per-request identity overhead (token verification + attribute resolution) p50 ≤ ${GOAL_US} µs`,
        measured: `session token (MFA) ${worst.p50} µs p50 / ${worst.p99} µs p99; API key ${key.p50} µs p50 / ${key.p99} µs p99 (both with the elevation lookup)`,
        met: worst.p50 <= GOAL_US && key.p50 <= GOAL_US,
      },
    },
  };
}

if (isMain(import.meta.url)) {
  const r = await runIdentityBench(isQuick());
  log(NAME, `wrote ${writeResult(r)}`);
  for (const [k, g] of Object.entries(r.goals)) log(NAME, `${g.met ? 'met' : 'MISSED'} ${k}: ${g.measured}`);
}
