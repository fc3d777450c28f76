// `cordon audit tail|verify|export`.

import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { AuditStore, exportJsonl, formatRecord, verifyAudit, type AuditRecord } from '../audit/index.ts';
import { CordonError, EXIT } from '../errors.ts';
import { hostPaths } from '../paths.ts';
import { printJson, style } from './output.ts';

export async function cmdAuditTail(o: { lines: string; session?: string; type?: string; follow?: boolean; json?: boolean }): Promise<number> {
  const n = Number(o.lines);
  if (!Number.isSafeInteger(n) || n < 0) throw new CordonError('CORDON_USAGE', `--lines: "${o.lines}" is not a count`);
  const filter = { session: o.session, type: o.type };
  const store = AuditStore.open(hostPaths().state);
  try {
    const print = (r: AuditRecord) => process.stdout.write((o.json ? JSON.stringify(r) : formatRecord(r)) + '\n');
    const recs = store.tail(n, filter);
    recs.forEach(print);
    if (!o.follow) return EXIT.ok;
    let last = recs.at(-1)?.seq ?? store.tail(1)[0]?.seq ?? 0;
    let stop = false;
    const onSig = () => {
      stop = true;
    };
    process.once('SIGINT', onSig);
    process.once('SIGTERM', onSig);
    while (!stop) {
      for (const r of store.records({ ...filter, afterSeq: last })) {
        print(r);
        last = r.seq;
      }
      await new Promise((res) => setTimeout(res, 300));
    }
    return EXIT.ok;
  } finally {
    store.close();
  }
}

export async function cmdAuditVerify(o: { json?: boolean }): Promise<number> {
  const state = hostPaths().state;
  const res = verifyAudit(state);
  if (o.json) printJson({ stateDir: state, ...res });
  else if (res.ok) process.stdout.write(`${style.green('ok')}: ${res.records} records, chain intact up to record ${res.head ?? 0} (${state}/audit.db)\n`);
  else {
    process.stdout.write(`${style.red('TAMPERED', process.stdout)}: ${res.problems.length}${res.omitted ? `+${res.omitted}` : ''} problem(s) in ${state}/audit.db\n`);
    for (const p of res.problems.slice(0, 50)) process.stdout.write(`  ${p.seq === null ? '-' : `#${p.seq}`} ${p.kind}: ${p.message}\n`);
  }
  return res.ok ? EXIT.ok : EXIT.failed;
}

export async function cmdAuditExport(o: { jsonl?: boolean; session?: string; output?: string }): Promise<number> {
  const state = hostPaths().state;
  const out = o.output ? createWriteStream(o.output, { mode: 0o600 }) : process.stdout;
  const res = await exportJsonl(state, out, { session: o.session });
  if (o.output) {
    (out as ReturnType<typeof createWriteStream>).end();
    await once(out, 'finish');
    process.stderr.write(`exported ${res.records} records to ${o.output}\n`);
  }
  return EXIT.ok;
}
