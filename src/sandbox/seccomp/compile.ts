// Turns the policy in rules.ts into the BPF file bwrap loads (`--seccomp FD`).
//
// The compiled program is cached as <cacheDir>/seccomp-<key>.bpf, where key is
// the sha256 of the rule text and of the helper binary's identity (inode,
// size, mtime): editing a rule or rebuilding the helper (a new libseccomp)
// picks a new file, and nothing ever has to invalidate anything. A hit costs
// two stats, no read and no child process. A miss runs build/native/seccomp-export and
// writes the result atomically (temp file + rename), mode 0600.
//
// Fails closed: without the helper there is no filter and no sandbox.

import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { statSync, type Stats } from 'node:fs';
import { mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { CordonError } from '../../errors.ts';
import { renderRules } from './rules.ts';

/** Where the helper lives, relative to the installation root. */
export const SECCOMP_EXPORT_PATH = 'build/native/seccomp-export';

const BPF_INSN_BYTES = 8; // struct sock_filter
const BPF_MAXINSNS = 4096; // the kernel refuses longer programs
const COMPILE_TIMEOUT_MS = 10_000;
const BUILD_HINT = 'run scripts/build-native.sh in the cordon checkout (it needs: apt-get install -y gcc make libc6-dev libseccomp-dev)';

export interface SeccompFilterOptions {
  /** Root of the cordon installation (holds build/native). */
  installDir: string;
  /** Directory for compiled filters; created 0700 if missing. Never mounted into a sandbox. */
  cacheDir: string;
}

export async function seccompFilterPath(opts: SeccompFilterOptions): Promise<string> {
  const helper = join(opts.installDir, SECCOMP_EXPORT_PATH);
  // The helper is identified by its inode, size and mtime (a rebuild changes
  // them): reading and hashing the binary on every start costs more.
  let hst: Stats;
  try {
    hst = statSync(helper);
  } catch (e) {
    throw new CordonError('CORDON_PREREQ_MISSING', `cordon's seccomp helper is not built (${helper}: ${(e as NodeJS.ErrnoException).code ?? String(e)})`, {
      hint: BUILD_HINT,
    });
  }
  const text = renderRules();
  const key = createHash('sha256')
    .update(`rules ${Buffer.byteLength(text)}\n`)
    .update(text)
    .update(`helper ${hst.ino} ${hst.size} ${hst.mtimeMs} ${hst.dev}\n`)
    .digest('hex');
  const path = join(opts.cacheDir, `seccomp-${key}.bpf`);

  let st: Stats | null = null;
  try {
    st = statSync(path);
  } catch {
    st = null;
  }
  if (st && looksCompiled(st)) return path;

  await readHelper(helper);
  const bpf = await compileSeccompRules(helper, text);
  await writeAtomically(opts.cacheDir, path, bpf);
  return path;
}

/**
 * Runs the helper on a rule text and returns the BPF program. Exported for
 * tests and tooling; the sandbox goes through seccompFilterPath.
 */
export async function compileSeccompRules(helper: string, text: string): Promise<Buffer> {
  const { status, stdout, stderr, error } = await run(helper, text);
  if (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'EACCES') {
      throw new CordonError('CORDON_PREREQ_MISSING', `cannot run the seccomp helper ${helper}: ${error.message}`, { hint: BUILD_HINT, cause: error });
    }
    throw new CordonError('CORDON_INTERNAL', `seccomp helper failed: ${error.message}`, { cause: error, detail: { helper } });
  }
  if (status !== 0) {
    const reason = stderr.trim().split('\n')[0] || `exit status ${String(status)}`;
    throw new CordonError('CORDON_INTERNAL', `seccomp rules did not compile: ${reason}`, { detail: { helper, status, stderr: stderr.trim() } });
  }
  const insns = stdout.length / BPF_INSN_BYTES;
  if (stdout.length === 0 || !Number.isInteger(insns) || insns > BPF_MAXINSNS) {
    throw new CordonError('CORDON_INTERNAL', `seccomp helper produced an invalid program (${stdout.length} bytes)`, { detail: { helper } });
  }
  return stdout;
}

async function readHelper(helper: string): Promise<Buffer> {
  try {
    return await readFile(helper);
  } catch (e) {
    throw new CordonError('CORDON_PREREQ_MISSING', `cordon's seccomp helper is not built (${helper}: ${(e as NodeJS.ErrnoException).code ?? String(e)})`, {
      hint: BUILD_HINT,
      cause: e,
    });
  }
}

/** A cache entry we wrote: ours, private, a whole number of instructions. */
function looksCompiled(st: Stats): boolean {
  const mine = typeof process.getuid !== 'function' || st.uid === process.getuid();
  return st.isFile() && mine && (st.mode & 0o077) === 0 && st.size > 0 && st.size % BPF_INSN_BYTES === 0 && st.size <= BPF_MAXINSNS * BPF_INSN_BYTES;
}

async function writeAtomically(dir: string, path: string, data: Buffer): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const tmp = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    const fh = await open(tmp, 'wx', 0o600);
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    // Concurrent sessions may race to write the same key: rename is atomic
    // and both write identical bytes, so the last one wins harmlessly.
    await rename(tmp, path);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw new CordonError('CORDON_SANDBOX_SETUP', `cannot cache the seccomp filter in ${dir}: ${(e as Error).message}`, { cause: e });
  }
}

interface RunResult {
  status: number | null;
  stdout: Buffer;
  stderr: string;
  error?: Error;
}

function run(file: string, input: string): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawn(file, [], { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let failure: Error | undefined;
    // Our own timer rather than spawn's `timeout`, which outlives a failed spawn.
    const timer = setTimeout(() => child.kill('SIGKILL'), COMPILE_TIMEOUT_MS);
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.stdin.on('error', () => undefined); // EPIPE if it exits early; its status says why
    child.once('error', (e) => {
      failure = e;
    });
    child.once('close', (status, signal) => {
      clearTimeout(timer);
      const stderr = Buffer.concat(err).toString('utf8') + (signal ? `\nkilled by ${signal}` : '');
      resolve({ status: signal ? null : status, stdout: Buffer.concat(out), stderr, ...(failure ? { error: failure } : {}) });
    });
    child.stdin.end(input);
  });
}
