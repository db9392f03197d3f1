/**
 * `gatehouse bundle keygen|export|import|verify`: bundles carried by hand between sites that
 * share no network (src/bundles/). Local files only: nothing here calls a server. The site's
 * private keys open with GATEHOUSE_BUNDLE_PASSPHRASE; the sequence ledger (replay and order)
 * lives in --state (default: the identity directory).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { BUNDLE_KINDS, openBundle, parseBundle, sealBundle, verifyTransport, type BundleKind } from '../bundles/bundle.ts';
import { generateIdentity, loadIdentity, parsePublic, saveIdentity } from '../bundles/identity.ts';
import { BundleLedger } from '../bundles/ledger.ts';
import { parseFor, usage } from './job.ts';

type Out = NodeJS.WritableStream;

function passphrase(): string {
  const p = process.env.GATEHOUSE_BUNDLE_PASSPHRASE;
  if (!p) throw usage('bundle', 'set GATEHOUSE_BUNDLE_PASSPHRASE: the site\'s bundle keys are encrypted under it');
  return p;
}

const trusted = (files: string[] | undefined) => (files ?? []).map((f) => parsePublic(readFileSync(f, 'utf8')));

export async function bundleCommand(argv: string[], out: Out): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub !== 'keygen' && sub !== 'export' && sub !== 'import' && sub !== 'verify') throw usage('bundle', sub === undefined ? 'give a sub-command (gatehouse bundle --help lists them)' : `unknown sub-command "bundle ${sub}"`);
  const { values, positionals } = parseFor('bundle', rest);
  const say = (text: string, json: unknown) => { out.write(values.json ? `${JSON.stringify(json, null, 2)}\n` : `${text}\n`); return 0; };
  switch (sub) {
    case 'keygen': {
      if (!values.id || !values.dir) throw usage('bundle', 'give --id SITE --dir DIR');
      saveIdentity(values.dir as string, generateIdentity(values.id as string), passphrase());
      return say(`bundle identity "${values.id}" in ${values.dir}; give ${join(values.dir as string, 'identity.json')} to the other site`, { id: values.id, dir: values.dir });
    }
    case 'export': {
      if (!values.identity || !values.to || !values.out || !values.kind || !(values.file as string[] | undefined)?.length) throw usage('bundle', 'give --kind K --identity DIR --to PUB.json --file F... --out BUNDLE.json');
      if (!(BUNDLE_KINDS as readonly string[]).includes(values.kind as string)) throw usage('bundle', `--kind must be one of ${BUNDLE_KINDS.join(', ')}`);
      const me = loadIdentity(values.identity as string, passphrase());
      const to = parsePublic(readFileSync(values.to as string, 'utf8'));
      const ledger = new BundleLedger(join((values.state ?? values.identity) as string, 'bundle-ledger.json'));
      const files = new Map((values.file as string[]).map((f) => [basename(f), new Uint8Array(readFileSync(f))]));
      const sequence = ledger.next(to.id);
      const b = await sealBundle({ from: me, to, sequence, kind: values.kind as BundleKind, files });
      writeFileSync(values.out as string, `${JSON.stringify(b)}\n`);
      return say(`bundle ${sequence} (${values.kind}, ${files.size} file${files.size === 1 ? '' : 's'}) for "${to.id}" → ${values.out}`, { sequence, kind: values.kind, recipient: to.id, files: [...files.keys()] });
    }
    case 'verify': {
      const file = positionals[0];
      if (!file || !(values.trust as string[] | undefined)?.length) throw usage('bundle', 'give BUNDLE.json and --trust PUB.json');
      const b = parseBundle(readFileSync(file, 'utf8'));
      const senders = trusted(values.trust as string[]);
      verifyTransport(b, senders);
      if (values.identity) {
        const opened = await openBundle(b, loadIdentity(values.identity as string, passphrase()), senders);
        return say(`OK: bundle ${b.sequence} from "${b.sender}" (${b.kind}); ${opened.manifest.length} files match their hashes`, { ok: true, sender: b.sender, sequence: b.sequence, kind: b.kind, manifest: opened.manifest });
      }
      return say(`OK: bundle ${b.sequence} from "${b.sender}" to "${b.recipient}" (${b.kind}) is signed by the sender and unchanged (contents not opened)`, { ok: true, sender: b.sender, recipient: b.recipient, sequence: b.sequence, kind: b.kind });
    }
    case 'import': {
      const file = positionals[0];
      if (!file || !values.identity || !values.out || !(values.trust as string[] | undefined)?.length) throw usage('bundle', 'give BUNDLE.json --identity DIR --trust PUB.json --out DIR');
      const b = parseBundle(readFileSync(file, 'utf8'));
      const ledger = new BundleLedger(join((values.state ?? values.identity) as string, 'bundle-ledger.json'));
      ledger.check(b.sender, b.sequence);
      const opened = await openBundle(b, loadIdentity(values.identity as string, passphrase()), trusted(values.trust as string[]));
      ledger.check(b.sender, b.sequence, opened.header.bundleId);
      mkdirSync(values.out as string, { recursive: true });
      for (const [name, bytes] of opened.files) writeFileSync(join(values.out as string, name), bytes, { flag: 'wx' });
      ledger.accept(b.sender, b.sequence, opened.header.bundleId);
      return say(`imported bundle ${b.sequence} from "${b.sender}" (${b.kind}): ${[...opened.files.keys()].join(', ')} → ${values.out}`, { sequence: b.sequence, sender: b.sender, kind: b.kind, files: [...opened.files.keys()] });
    }
  }
}
