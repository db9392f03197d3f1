/**
 * The durable write under one lone audit append (issue 15, the PostgreSQL point query): what
 * each way of making ~600 bytes durable costs on this disk, one append at a time (a
 * sequential client: nothing to share a sync with), interleaved round by round.
 *
 *   write+fdatasync      what the file store does: pwrite, then fdatasync on the thread pool
 *                        (src/audit/store.ts appendBatch)
 *   write+fsync          the same with fsync (also flushes metadata such as mtime)
 *   O_DSYNC write        one pwrite on a file opened O_DSYNC, on the thread pool: the write
 *                        returns once the data is durable
 *   prealloc+fdatasync   pwrite + fdatasync into a preallocated (already written and synced)
 *                        region, so no append grows the file: fdatasync then has no size
 *                        change to journal
 *   TransparencyLog      the real log's `append` (entry encoding, leaf hash, pseudonym,
 *                        derived tree files, group commit, fdatasync), checkpoints held off
 *   log+checkpoints      the same with the default checkpoint interval (500 ms): each
 *                        checkpoint syncs the derived files and the note, which the next
 *                        entries' fdatasync can queue behind
 *
 * Each figure is the time until the write is durable as seen by the event loop (µs, p50).
 * Files go to a scratch folder on the same file system as the repository (.gatehouse/bench).
 *
 *   npx node bench/durable-append.ts [--quick]
 */
import { closeSync, constants, fdatasync, fsync, mkdirSync, mkdtempSync, openSync, rmSync, write, writeSync, fdatasyncSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { TransparencyLog } from '../src/audit/log.ts';
import type { AuditRecord } from '../src/audit/types.ts';
import { CACHE_DIR, isMain, isQuick, log, machineInfo, round, summarize, writeResult, type BenchResult } from './run.ts';

const NAME = 'durable-append';
const fdatasyncAsync = promisify(fdatasync);
const fsyncAsync = promisify(fsync);
const writeAsync = (fd: number, buf: Buffer, position: number): Promise<number> =>
  new Promise((resolve, reject) => write(fd, buf, 0, buf.length, position, (err, n) => (err ? reject(err) : resolve(n))));
const RECORD = Buffer.alloc(600, 0x61);

export async function runDurableAppendBench(quick: boolean): Promise<BenchResult> {
  const perRound = quick ? 100 : 400;
  const rounds = quick ? 2 : 4;
  mkdirSync(CACHE_DIR, { recursive: true });
  const dir = mkdtempSync(join(CACHE_DIR, 'durable-append-'));
  const prealloc = (quick ? 400 : 2_000) * rounds * RECORD.length;
  try {
    const fds = {
      fdatasync: openSync(join(dir, 'a.dat'), 'w'),
      fsync: openSync(join(dir, 'b.dat'), 'w'),
      dsync: openSync(join(dir, 'c.dat'), constants.O_WRONLY | constants.O_CREAT | constants.O_DSYNC),
      prealloc: openSync(join(dir, 'd.dat'), 'w'),
    };
    // Preallocate by writing zeros and syncing: the appends below overwrite, never extend.
    const zeros = Buffer.alloc(1 << 20);
    for (let at = 0; at < prealloc; at += zeros.length) writeSync(fds.prealloc, zeros, 0, zeros.length, at);
    fdatasyncSync(fds.prealloc);
    const pos = { fdatasync: 0, fsync: 0, dsync: 0, prealloc: 0 };
    const logDir = join(dir, 'log');
    const auditLog = await TransparencyLog.start(logDir, { demo: true, checkpointIntervalMs: 60_000 });
    const checkpointed = await TransparencyLog.start(join(dir, 'log-cp'), { demo: true });
    const entry: AuditRecord = {
      time: new Date().toISOString(), principal: 'ivan', source: '127.0.0.1', channel: 'bench', action: 'query', purpose: 'claims-processing',
      datasets: ['claims'], columns: ['claim_id', 'region'], decision: 'allow', reasons: ['policy "insurer-own-region" permits'], policyVersion: 'sha256:0123',
      obligations: ['rowFilter:claims', 'rowCap:1000'], sqlFingerprint: 'abc', rowsReturned: 20, resultDigest: 'sha256:def', errorCode: null,
    };
    const paths: Record<string, () => Promise<unknown>> = {
      'write+fdatasync': async () => { writeSync(fds.fdatasync, RECORD, 0, RECORD.length, pos.fdatasync); pos.fdatasync += RECORD.length; await fdatasyncAsync(fds.fdatasync); },
      'write+fsync': async () => { writeSync(fds.fsync, RECORD, 0, RECORD.length, pos.fsync); pos.fsync += RECORD.length; await fsyncAsync(fds.fsync); },
      'O_DSYNC write': async () => { const at = pos.dsync; pos.dsync += RECORD.length; await writeAsync(fds.dsync, RECORD, at); },
      'prealloc+fdatasync': async () => { writeSync(fds.prealloc, RECORD, 0, RECORD.length, pos.prealloc); pos.prealloc += RECORD.length; await fdatasyncAsync(fds.prealloc); },
      TransparencyLog: () => auditLog.append(entry),
      'log+checkpoints': () => checkpointed.append(entry),
    };
    const samples: Record<string, number[]> = Object.fromEntries(Object.keys(paths).map((k) => [k, []]));
    try {
      for (const f of Object.values(paths)) for (let i = 0; i < 20; i++) await f();
      for (let r = 0; r < rounds; r++) {
        const order = Object.keys(paths);
        if (r % 2 === 1) order.reverse();
        // Interleaved call by call, so each path sees the same moment of the disk and the machine.
        for (let i = 0; i < perRound; i++) {
          for (const k of order) {
            const t = performance.now();
            await paths[k]!();
            samples[k]!.push((performance.now() - t) * 1000);
          }
        }
        log(NAME, `round ${r + 1}/${rounds}: ${order.map((k) => `${k} ${summarize(samples[k]!, 0).p50} µs`).join(', ')}`);
      }
    } finally {
      await auditLog.close();
      await checkpointed.close();
      for (const fd of Object.values(fds)) closeSync(fd);
    }
    const figures = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, summarize(v, 1)]));
    const p50 = (k: string): number => (figures[k] as { p50: number }).p50;
    log(NAME, `p50 µs: ${Object.keys(paths).map((k) => `${k} ${p50(k)}`).join(', ')}`);
    return {
      name: NAME, date: new Date().toISOString(), quick, machine: machineInfo(),
      figures: { recordBytes: RECORD.length, perPath: figures, logOverFdatasync: round(p50('TransparencyLog') / p50('write+fdatasync')) },
      goals: {},
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (isMain(import.meta.url)) {
  const r = await runDurableAppendBench(isQuick());
  log(NAME, `wrote ${writeResult(r)}`);
}
