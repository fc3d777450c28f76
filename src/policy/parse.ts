// Parsing one policy file: YAML -> validated PolicyFile, with a locator that
// maps field paths back to line/column. Every error names file, line and field.

import { isMap, isSeq, LineCounter, parseDocument, type Document } from 'yaml';
import type { z } from 'zod';
import { CordonError } from '../errors.ts';
import type { Layer } from './merge.ts';
import { PolicyFileSchema } from './schema.ts';
import type { Origin } from './types.ts';

export interface ParsedFile {
  layer: Layer;
}

export function parsePolicyText(text: string, origin: Origin): Layer {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true, strict: true });
  const file = origin.source;

  const firstError = doc.errors[0];
  if (firstError) {
    const pos = firstError.linePos?.[0] ?? lineCounter.linePos(firstError.pos[0]);
    throw new CordonError('CORDON_POLICY_INVALID', `${file}:${pos?.line ?? '?'}:${pos?.col ?? '?'}: invalid YAML: ${firstLine(firstError.message)}`, {
      detail: { file, line: pos?.line, col: pos?.col },
    });
  }
  if (doc.contents === null) {
    throw new CordonError('CORDON_POLICY_INVALID', `${file}: the policy file is empty`, {
      hint: 'a policy needs at least "version: 1"',
      detail: { file },
    });
  }
  const locate = (path: (string | number)[], atKey = false) => locatePath(doc, lineCounter, path, atKey);
  const data: unknown = doc.toJS({ maxAliasCount: 50 });
  const result = PolicyFileSchema.safeParse(data);
  if (!result.success) throw zodToPolicyError(result.error, file, locate);
  return { file: result.data, origin, locate };
}

function firstLine(s: string): string {
  return s.split('\n')[0] ?? s;
}

function locatePath(doc: Document, lc: LineCounter, path: (string | number)[], atKey = false): { line?: number; col?: number } {
  // Walk down as far as the path exists; report the deepest node found.
  let node: unknown = doc.contents;
  let offset: number | undefined = rangeStart(node);
  for (const [i, key] of path.entries()) {
    if (isMap(node)) {
      const pair = node.items.find((p) => (p.key as { value?: unknown } | null)?.value === key);
      if (!pair) break;
      offset = rangeStart(pair.key) ?? offset;
      if (atKey && i === path.length - 1) break;
      node = pair.value;
      offset = rangeStart(node) ?? offset;
    } else if (isSeq(node) && typeof key === 'number') {
      node = node.items[key];
      offset = rangeStart(node) ?? offset;
    } else break;
  }
  if (offset === undefined) return {};
  const pos = lc.linePos(offset);
  return { line: pos.line, col: pos.col };
}

function rangeStart(node: unknown): number | undefined {
  const r = (node as { range?: [number, number, number] } | null)?.range;
  return r ? r[0] : undefined;
}

function zodToPolicyError(
  error: z.ZodError,
  file: string,
  locate: (path: (string | number)[], atKey?: boolean) => { line?: number; col?: number },
): CordonError {
  const problems = error.issues.map((issue) => {
    const path = issue.path.filter((p): p is string | number => typeof p !== 'symbol');
    let message = issue.message;
    if (issue.code === 'unrecognized_keys') {
      const keys = (issue as { keys: string[] }).keys;
      const loc = locate([...path, keys[0]!], true);
      const field = [...path, keys[0]!].join('.');
      return { field, line: loc.line, col: loc.col, message: `unknown field${keys.length > 1 ? 's' : ''} ${keys.map((k) => `"${k}"`).join(', ')}` };
    }
    if (issue.code === 'invalid_union') message = 'has an invalid value';
    const loc = locate(path);
    return { field: formatPath(path), line: loc.line, col: loc.col, message };
  });
  const first = problems[0]!;
  const lines = problems.map((p) => `${file}:${p.line ?? '?'}:${p.col ?? '?'}: ${p.field || '(top level)'}: ${p.message}`);
  return new CordonError('CORDON_POLICY_INVALID', lines.join('\n'), {
    hint: 'see docs/policy-reference.md for every field',
    detail: { file, line: first.line, col: first.col, field: first.field, problems },
  });
}

function formatPath(path: (string | number)[]): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('');
}
