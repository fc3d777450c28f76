// The selftest report: a terminal table, JSON, and a self-contained HTML page
// a security reviewer can read without cordon (inline CSS, no scripts, no
// external resources). Everything shown is escaped: probe output is
// attacker-controlled text.

import type { ProbeResult } from './types.ts';

export interface ReportMeta {
  cordonVersion: string;
  startedAt: string;
  durationMs: number;
  host: string;
  kernel: string;
  backend: string;
  policySources: string[];
  policyHash: string | null;
  checks: { id: string; title: string; status: string; detail: string }[];
}

export const CLASS_TITLES: Record<number, string> = {
  1: 'Proxy ignorers',
  2: 'Identity mismatch',
  3: 'IP literals and address classes',
  4: 'DNS rebinding',
  5: 'DNS exfiltration',
  6: 'IPv6 paths',
  7: 'UDP, QUIC, ICMP, raw sockets',
  8: 'Pivots',
  9: 'Smuggling',
  10: 'TLS edges',
  11: 'Credential abuse',
  12: 'Exfiltration through allowed hosts',
  13: 'Control-plane tampering',
  14: 'Filesystem escapes',
  15: 'Cross-session isolation',
};

export function summarize(results: ProbeResult[]): { contained: number; leaked: number; notApplicable: number; errors: number } {
  return {
    contained: results.filter((r) => r.outcome === 'contained').length,
    leaked: results.filter((r) => r.outcome === 'LEAKED').length,
    notApplicable: results.filter((r) => r.outcome === 'not applicable').length,
    errors: results.filter((r) => r.outcome === 'error').length,
  };
}

const esc = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!).replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g, '?');

export function renderHtml(results: ProbeResult[], meta: ReportMeta): string {
  const sum = summarize(results);
  const verdict = sum.leaked === 0 && sum.errors === 0 ? 'Nothing leaked' : sum.leaked > 0 ? `${sum.leaked} probe(s) LEAKED` : `${sum.errors} probe(s) could not run`;
  const byClass = new Map<number, ProbeResult[]>();
  for (const r of results) byClass.set(r.class, [...(byClass.get(r.class) ?? []), r]);
  const rows = (rs: ProbeResult[]) =>
    rs
      .map(
        (r) => `<tr class="${r.outcome === 'LEAKED' ? 'leak' : r.outcome === 'error' ? 'err' : r.outcome === 'contained' ? 'ok' : 'na'}">
<td><code>${esc(r.id)}</code></td><td>${esc(r.title)}</td><td class="o">${esc(r.outcome)}</td><td>${esc(r.detail)}</td>
<td>${r.evidence.map((e) => `#${e.seq} <code>${esc(e.type)}</code> ${esc(e.summary)}`).join('<br>')}${r.sessionId ? `<br><small>session <code>${esc(r.sessionId)}</code></small>` : ''}</td></tr>`,
      )
      .join('\n');
  const sections = [...byClass.entries()]
    .sort(([a], [b]) => a - b)
    .map(([c, rs]) => `<h2>${c === 15 ? 'Cross-session isolation' : `Class ${c}: ${esc(CLASS_TITLES[c] ?? '')}`}</h2>
<table><thead><tr><th>probe</th><th>what it tries</th><th>result</th><th>details</th><th>audit evidence</th></tr></thead><tbody>
${rows(rs)}
</tbody></table>`)
    .join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>cordon selftest: ${esc(verdict)}</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:1200px;color:#1d1d1f;padding:0 1rem}
h1{font-size:1.6rem}h2{font-size:1.15rem;margin-top:2rem}
table{border-collapse:collapse;width:100%}th,td{border:1px solid #ddd;padding:.35rem .5rem;vertical-align:top;text-align:left}
th{background:#f4f4f6}td.o{font-weight:600;white-space:nowrap}
tr.ok td.o{color:#17702b}tr.leak td.o{color:#b00020}tr.leak{background:#fff0f0}tr.err td.o{color:#9a5b00}tr.na td.o{color:#666}
code{font:12px ui-monospace,monospace}.verdict{font-size:1.2rem;font-weight:700;color:${sum.leaked || sum.errors ? '#b00020' : '#17702b'}}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem}dt{font-weight:600}
</style></head><body>
<h1>cordon selftest</h1>
<p class="verdict">${esc(verdict)}</p>
<p>${sum.contained} contained, ${sum.leaked} leaked, ${sum.notApplicable} not applicable, ${sum.errors} errors, of ${results.length} probes.
Each probe ran in a fresh session under the policy below; a probe counts as contained only if no planted canary reached any
attacker endpoint, log or output that left the sandbox, and its host-side check passed.</p>
<dl>
<dt>cordon</dt><dd>${esc(meta.cordonVersion)}</dd>
<dt>run</dt><dd>${esc(meta.startedAt)}, ${(meta.durationMs / 1000).toFixed(1)} s</dd>
<dt>host</dt><dd>${esc(meta.host)} (kernel ${esc(meta.kernel)})</dd>
<dt>backend</dt><dd>${esc(meta.backend)}</dd>
<dt>policy</dt><dd>${meta.policySources.map((p) => `<code>${esc(p)}</code>`).join(', ') || 'built-in default'}${meta.policyHash ? ` <small>(hash <code>${esc(meta.policyHash.slice(0, 16))}</code>)</small>` : ''}</dd>
</dl>
<h2>Machine</h2>
<table><thead><tr><th>check</th><th>status</th><th>detail</th></tr></thead><tbody>
${meta.checks.map((c) => `<tr><td>${esc(c.title)}</td><td>${esc(c.status)}</td><td>${esc(c.detail)}</td></tr>`).join('\n')}
</tbody></table>
${sections}
</body></html>
`;
}
