/**
 * The one error table and what hangs off it: every code is complete, every part's
 * detailed-code table yields only codes of the union, every part's error class is a
 * GatehouseError whose status, outcome and SQLSTATE are the table's, and docs/errors.md
 * is exactly what scripts/errors-doc.ts generates from them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { DOC_PATH, PART_TABLES, renderErrorsDoc } from '../scripts/errors-doc.ts';
import { AuditError, EntryNotFound, LogUnavailable, ProofVerificationFailed } from './audit/errors.ts';
import { asGatehouseError, CODE_BY_STATUS, codeFor, ERRORS, GatehouseError, isErrorCode, type ErrorCode } from './errors.ts';
import { GovernanceError, GOVERNANCE_CODES, type GovernanceErrorCode } from './governance/types.ts';
import { AccessReviewInvalid } from './identity/access-review.ts';
import { ElevationError, ELEVATION_CODES, type ElevationErrorCode } from './identity/elevation.ts';
import { AccountLocked } from './identity/lockout.ts';
import { IdentityError } from './identity/password.ts';
import { PostureConfigInvalid } from './identity/posture.ts';
import { KeyError, KeyringPassphraseWrong } from './keys/errors.ts';
import { AccountingError, BudgetStoreBusy } from './privacy/accounting/errors.ts';
import { DlpError, DlpResultBlocked } from './privacy/dlp/errors.ts';
import { MechanismError } from './privacy/mechanisms/errors.ts';
import { SdcError } from './privacy/sdc/errors.ts';
import { StateError, StateUnavailable } from './sql/errors.ts';
import { ProtocolViolation } from './wire/protocol.ts';
import { WireRefusal, wireError } from './wire/sqlstate.ts';
import { WorkspaceInvalid } from './workspace/load.ts';

test('the committed docs/errors.md is exactly what scripts/errors-doc.ts generates', () => {
  assert.equal(readFileSync(DOC_PATH, 'utf8'), renderErrorsDoc(), 'docs/errors.md is out of date: run npx node scripts/errors-doc.ts');
});

test('every code has an HTTP error status, an audit outcome, a SQLSTATE and both doc texts', () => {
  for (const [code, spec] of Object.entries(ERRORS)) {
    assert.match(code, /^[A-Z][A-Z_]+$/, code);
    assert.ok(Number.isInteger(spec.status) && spec.status >= 400 && spec.status <= 599, `${code}: status ${spec.status}`);
    assert.ok(spec.outcome === 'deny' || spec.outcome === 'error', `${code}: outcome ${String(spec.outcome)}`);
    assert.match(spec.sqlstate, /^[0-9A-Z]{5}$/, `${code}: SQLSTATE`);
    assert.notEqual(spec.sqlstate.slice(0, 2), '00', `${code}: class 00 means success`);
    assert.ok(spec.when.trim().length > 10 && spec.next.trim().length > 5, `${code}: doc texts`);
  }
});

test('every part table and the status fallback yield only codes of the union', () => {
  for (const p of PART_TABLES) {
    assert.ok(Object.keys(p.table).length > 0, p.cls);
    for (const [detail, code] of Object.entries(p.table)) {
      assert.ok(isErrorCode(code), `${p.cls}: ${detail} → ${String(code)} is not in the union`);
      assert.doesNotMatch(detail, /^(?:[a-z]|.*\s)/, `${p.cls}: ${detail} is a code, not a sentence`);
    }
  }
  for (const [status, code] of Object.entries(CODE_BY_STATUS)) {
    assert.ok(isErrorCode(code), `${status} → ${code}`);
    // 502 (a peer's bad answer) is the caller's 503: Gatehouse cannot serve it now.
    if (status !== '502') assert.equal(ERRORS[code].status, Number(status), `${status} → ${code} keeps the status`);
  }
  assert.equal(codeFor('NO_SUCH_DETAIL', {}, 418), 'INTERNAL', 'an unknown status is INTERNAL');
  assert.equal(codeFor('NO_SUCH_DETAIL', {}), 'INTERNAL');
});

/** One instance of every part's class, built through its public constructor. */
function samples(): { err: GatehouseError; cls: Function; detail: string | null }[] {
  const gov = (Object.keys(GOVERNANCE_CODES) as GovernanceErrorCode[]).map((c) => ({ err: new GovernanceError(c, 'refused', 'do this next'), cls: GovernanceError, detail: c }));
  const audit = { action: 'elevation.approve' as const, actor: 'olga', subject: 'rhea', role: 'r', purpose: 'p', requestId: 'req_1', grantId: null, time: '2026-01-01T00:00:00Z', alert: false, expiresAt: null };
  const elev = (Object.keys(ELEVATION_CODES) as ElevationErrorCode[]).map((c) => ({ err: new ElevationError(c, 'refused', audit), cls: ElevationError, detail: c }));
  return [
    ...gov, ...elev,
    { err: new IdentityError('IDENTITY_USER_EXISTS', 'exists', 409), cls: IdentityError, detail: 'IDENTITY_USER_EXISTS' },
    { err: new IdentityError('IDENTITY_STORE_UNAVAILABLE', 'down', 503), cls: IdentityError, detail: 'IDENTITY_STORE_UNAVAILABLE' },
    { err: new IdentityError('IDENTITY_MFA_CODE_REQUIRED', 'send code', 401), cls: IdentityError, detail: 'IDENTITY_MFA_CODE_REQUIRED' },
    { err: new AccountLocked(1500), cls: IdentityError, detail: 'IDENTITY_ACCOUNT_LOCKED' },
    { err: new EntryNotFound('a1'), cls: AuditError, detail: 'AUDIT_ENTRY_NOT_FOUND' },
    { err: new ProofVerificationFailed('bad root'), cls: AuditError, detail: 'AUDIT_PROOF_INVALID' },
    { err: new LogUnavailable('disk full'), cls: AuditError, detail: 'AUDIT_UNAVAILABLE' },
    { err: new StateUnavailable('no route to host'), cls: StateError, detail: 'STATE_UNAVAILABLE' },
    { err: new KeyringPassphraseWrong('/var/lib/gh/keyring.json'), cls: KeyError, detail: 'KEYRING_PASSPHRASE_WRONG' },
    { err: new DlpResultBlocked([{ detector: 'email', column: 'c', classification: 'confidential', action: 'block', rows: 2 }]), cls: DlpError, detail: 'DLP_BLOCKED' },
    { err: new SdcError('SDC_UNPROTECTABLE', 'refused', 403), cls: SdcError, detail: 'SDC_UNPROTECTABLE' },
    { err: new MechanismError('DP_PARAMETER_INVALID', 'scale is NaN'), cls: MechanismError, detail: 'DP_PARAMETER_INVALID' },
    { err: new BudgetStoreBusy(), cls: AccountingError, detail: 'BUDGET_STORE_BUSY' },
    { err: new WorkspaceInvalid([{ file: 'gatehouse.yaml', line: 3, message: 'unknown key' }]), cls: WorkspaceInvalid, detail: null },
    { err: new PostureConfigInvalid(['issuers[0]: missing']), cls: PostureConfigInvalid, detail: 'POSTURE_CONFIG_INVALID' },
    { err: new AccessReviewInvalid('days must be positive'), cls: AccessReviewInvalid, detail: 'ACCESS_REVIEW_INVALID' },
    { err: new ProtocolViolation('message truncated'), cls: ProtocolViolation, detail: null },
  ];
}

test('every part error is a GatehouseError of its own class, with the table\'s status, outcome and SQLSTATE and its detail first in reasons', () => {
  for (const { err, cls, detail } of samples()) {
    const what = `${err.name} ${detail ?? err.code}`;
    assert.ok(err instanceof GatehouseError && err instanceof Error && err instanceof cls, what);
    assert.equal(err.name, err.constructor.name, what);
    assert.ok(isErrorCode(err.code), what);
    assert.equal(err.status, ERRORS[err.code].status, what);
    assert.equal(err.statusCode, err.status, `${what}: Fastify reads statusCode`);
    assert.equal(err.outcome, ERRORS[err.code].outcome, what);
    assert.equal(err.sqlstate, ERRORS[err.code].sqlstate, what);
    assert.equal(err.detail, detail, what);
    if (detail !== null && !(err instanceof DlpResultBlocked)) assert.equal(err.reasons[0], detail, `${what}: audit entries keep the detail`);
    assert.deepEqual(Object.keys(err.toJSON()).sort(), ['code', 'hint', 'message', 'reasons'], what);
  }
});

test('conflicts are 409 CONFLICT, unavailability 503 UNAVAILABLE, lockouts 429 with a retry time', () => {
  const code = (e: GatehouseError): [ErrorCode, number] => [e.code, e.status];
  assert.deepEqual(code(new GovernanceError('GOV_ALREADY_DECIDED', 'decided', 'nothing to do')), ['CONFLICT', 409]);
  assert.deepEqual(code(new GovernanceError('GOV_AGREEMENT_OVERLAP', 'overlaps', 'end the other first')), ['CONFLICT', 409]);
  assert.deepEqual(code(new GovernanceError('GOV_LEGAL_HOLD', 'held', 'release the hold')), ['CONFLICT', 409]);
  assert.deepEqual(code(new GovernanceError('GOV_INVALID', 'bad', 'fix it')), ['REQUEST_INVALID', 400]);
  assert.deepEqual(code(new StateUnavailable('down')), ['UNAVAILABLE', 503]);
  assert.deepEqual(code(new BudgetStoreBusy()), ['UNAVAILABLE', 503]);
  assert.equal(new BudgetStoreBusy().retryAfterSeconds, 1);
  const locked = new AccountLocked(1500);
  assert.deepEqual(code(locked), ['RATE_LIMITED', 429]);
  assert.equal(locked.retryAfterSeconds, 2, 'rounded up to whole seconds');
  assert.deepEqual(code(new IdentityError('IDENTITY_MFA_CODE_REQUIRED', 'send code', 401)), ['MFA_REQUIRED', 401]);
  assert.deepEqual(code(new IdentityError('IDENTITY_ACCOUNT_DISABLED', 'disabled', 403)), ['AUTH_INVALID', 401], 'a disabled account is answered like a bad credential');
});

test('a part\'s INTERNAL error reaches callers without its operator message, but with its detailed code', () => {
  const err = new KeyringPassphraseWrong('/srv/secret-place/keyring.json');
  const out = asGatehouseError(err);
  assert.equal(out.code, 'INTERNAL');
  assert.doesNotMatch(JSON.stringify(out.toJSON()), /secret-place/);
  assert.deepEqual(out.reasons, ['KEYRING_PASSPHRASE_WRONG']);
  assert.equal(out.cause, err, 'the original stays the cause, for the server log');
  const conflict = new GovernanceError('GOV_ALREADY_DECIDED', 'decided', 'nothing to do');
  assert.equal(asGatehouseError(conflict), conflict, 'other part errors pass unchanged');
  assert.equal(asGatehouseError(new TypeError('x is undefined at /srv/app.js')).message, 'internal error; the request was not completed');
});

test('the wire answers err.sqlstate: 08P01 for a protocol violation, the refusal\'s own SQLSTATE for a WireRefusal', () => {
  assert.equal(wireError(new ProtocolViolation('message truncated')).code, '08P01');
  assert.equal(wireError(new GovernanceError('GOV_ALREADY_DECIDED', 'decided', 'nothing to do')).code, ERRORS.CONFLICT.sqlstate);
  const refusal = new WireRefusal('28000', new GatehouseError('POLICY_DENIED', 'no', { reasons: ['why'] }));
  assert.ok(refusal instanceof GatehouseError);
  assert.equal(refusal.code, 'POLICY_DENIED');
  assert.equal(refusal.status, 403);
  const w = wireError(refusal);
  assert.equal(w.code, '28000');
  assert.match(w.detail!, /^gatehouse code POLICY_DENIED/);
  assert.equal(wireError(new Error('boom: /etc/passwd')).code, 'XX000');
  assert.doesNotMatch(wireError(new Error('boom: /etc/passwd')).message, /passwd/);
});

test('the mapping is the same whatever status a part passes for a code its table lists', () => {
  assert.equal(new KeyError('LEGAL_HOLD_ACTIVE', 'held', 500).code, 'CONFLICT');
  assert.equal(new AuditError('AUDIT_PROOF_INVALID', 'bad', 422).code, 'REQUEST_INVALID');
  assert.equal(new AuditError('AUDIT_WITNESS_REJECTED', 'peer said 500', 502).code, 'UNAVAILABLE', 'unlisted: by status');
  assert.equal(new DlpError('DLP_CONFIG_INVALID', 'bad', 500).code, 'WORKSPACE_INVALID');
  assert.equal(new AccountingError('BUDGET_CHARGE_REFUNDED', 'refunded', 500).code, 'CONFLICT');
});
