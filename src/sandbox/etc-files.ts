// The sandbox's /etc: a small per-session directory, mounted read-only. It
// holds generated files (an account database naming only the sandbox user, a
// host name, a resolver configuration) and copies of the few host files that
// dynamic linking, TLS, locales, time zones and name lookup need. Large
// directories (CA certificates, terminfo) are bound read-only on top instead of
// copied. Nothing else of the host's /etc (shadow, sudoers, ssh host keys,
// docker or cloud configs) exists inside.
//
// One directory mount plus a handful of binds: every bind mount costs bwrap
// about a quarter of a millisecond. Copies are made once and cached (see
// cachedEtc), since creating files is what costs most.

import { createHash } from 'node:crypto';
import { copyFileSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, symlinkSync, writeFileSync, type Stats } from 'node:fs';
import { join } from 'node:path';

/** Host /etc entries the sandbox gets (copied if small, bound if a large directory). */
export const ETC_ENTRIES: readonly string[] = [
  'alternatives', 'ssl', 'ca-certificates', 'ca-certificates.conf', 'pki', 'crypto-policies',
  'ld.so.cache', 'ld.so.conf', 'ld.so.conf.d', 'localtime', 'timezone', 'nsswitch.conf', 'host.conf',
  'gai.conf', 'services', 'protocols', 'mime.types', 'os-release', 'lsb-release', 'debian_version',
  'terminfo', 'inputrc', 'shells', 'locale.alias', 'locale.conf', 'default', 'magic', 'papersize',
  'bash.bashrc', 'profile', 'environment', 'vim', 'nanorc', 'manpath.config', 'python3', 'perl', 'gitattributes',
];

/** Files under /etc/default that are safe to copy (the rest may configure host services). */
const DEFAULT_FILES = new Set(['locale', 'keyboard']);
const COPY_MAX_BYTES = 256 * 1024;
const COPY_MAX_ENTRIES = 16;

export interface EtcInput {
  dir: string;
  user: string;
  uid: number;
  gid: number;
  home: string;
  hostname: string;
  /** Resolver address inside the sandbox, or null for no DNS at all. */
  nameserver: string | null;
  shell?: string;
  /** Extra generated files: name -> content (e.g. a CA bundle later). */
  extra?: Record<string, string>;
  hostEtc?: string;
}

export interface EtcResult {
  /** The directory to mount read-only at /etc. */
  dir: string;
  /** Host directories to bind read-only at /etc/<name> on top. */
  binds: { src: string; dest: string }[];
}

/**
 * The /etc skeleton for these inputs, built once and reused: creating files
 * costs far more than checking them, and the skeleton only changes when the
 * host's files or the inputs do (the key covers both). Built in a temporary
 * directory and renamed into place, so a concurrent session never sees half.
 */
export function cachedEtc(cacheDir: string, input: Omit<EtcInput, 'dir'>): EtcResult {
  const hostEtc = input.hostEtc ?? '/etc';
  const h = createHash('sha256').update(JSON.stringify({ v: 2, input }));
  for (const name of ETC_ENTRIES) {
    try {
      const st = lstatSync(join(hostEtc, name));
      h.update(`${name}:${st.ino}:${st.size}:${st.mtimeMs}\n`);
    } catch {
      h.update(`${name}:-\n`);
    }
  }
  const key = h.digest('hex').slice(0, 32);
  const dir = join(cacheDir, `etc-${key}`);
  const bindsFile = join(cacheDir, `etc-${key}.binds.json`);
  try {
    return { dir, binds: JSON.parse(readFileSync(bindsFile, 'utf8')) as EtcResult['binds'] };
  } catch {
    // not built yet
  }
  mkdirSync(cacheDir, { recursive: true, mode: 0o700 });
  const tmp = `${dir}.${process.pid}.${Date.now()}.tmp`;
  const built = buildEtc({ ...input, dir: tmp });
  try {
    renameSync(tmp, dir);
  } catch {
    rmSync(tmp, { recursive: true, force: true }); // another session won the race: same content
  }
  writeFileSync(`${bindsFile}.${process.pid}.tmp`, JSON.stringify(built.binds));
  renameSync(`${bindsFile}.${process.pid}.tmp`, bindsFile);
  return { dir, binds: built.binds };
}

export function buildEtc(input: EtcInput): EtcResult {
  const hostEtc = input.hostEtc ?? '/etc';
  mkdirSync(input.dir, { recursive: true, mode: 0o755 });
  const binds: { src: string; dest: string }[] = [];

  for (const name of ETC_ENTRIES) {
    const src = join(hostEtc, name);
    let st: Stats;
    try {
      st = lstatSync(src);
    } catch {
      continue;
    }
    const dest = join(input.dir, name);
    if (st.isSymbolicLink()) symlinkSync(readlinkSync(src), dest);
    else if (st.isFile()) {
      if (st.size <= COPY_MAX_BYTES) copyFileSync(src, dest);
      else {
        writeFileSync(dest, '', { mode: 0o444 }); // mountpoint: /etc is read-only inside
        binds.push({ src, dest: `/etc/${name}` });
      }
    } else if (st.isDirectory()) {
      if (!copyFlatDir(src, dest, name === 'default' ? DEFAULT_FILES : null)) {
        mkdirSync(dest, { recursive: true, mode: 0o755 }); // mountpoint
        binds.push({ src, dest: `/etc/${name}` });
      }
    }
  }

  const files: Record<string, string> = {
    passwd:
      `root:x:0:0:root:/root:/usr/sbin/nologin\n` +
      (input.uid === 0 ? '' : `${input.user}:x:${input.uid}:${input.gid}:cordon sandbox:${input.home}:${input.shell ?? '/bin/bash'}\n`) +
      `nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n`,
    group: `root:x:0:\n` + (input.gid === 0 ? '' : `${input.user}:x:${input.gid}:\n`) + `nogroup:x:65534:\n`,
    hostname: `${input.hostname}\n`,
    hosts: `127.0.0.1\tlocalhost ${input.hostname}\n::1\tlocalhost ip6-localhost ip6-loopback\n`,
    'resolv.conf': input.nameserver === null ? '# cordon: no network in this sandbox\n' : `nameserver ${input.nameserver}\noptions edns0 trust-ad\n`,
    ...(input.extra ?? {}),
  };
  for (const [name, content] of Object.entries(files)) writeFileSync(join(input.dir, name), content, { mode: 0o444 });
  return { dir: input.dir, binds };
}

/** Copy a directory of small files and symlinks (no subdirectories). False if it is not that. */
function copyFlatDir(src: string, dest: string, only: Set<string> | null): boolean {
  let names: string[];
  try {
    names = readdirSync(src);
  } catch {
    return true; // unreadable: leave it out
  }
  if (names.length > COPY_MAX_ENTRIES) return false;
  const plan: [string, Stats][] = [];
  for (const n of names) {
    if (only && !only.has(n)) continue;
    const st = lstatSync(join(src, n));
    if (st.isDirectory() || (st.isFile() && st.size > COPY_MAX_BYTES)) return false;
    plan.push([n, st]);
  }
  mkdirSync(dest, { mode: 0o755 });
  for (const [n, st] of plan) {
    if (st.isSymbolicLink()) symlinkSync(readlinkSync(join(src, n)), join(dest, n));
    else if (st.isFile()) copyFileSync(join(src, n), join(dest, n));
  }
  return true;
}
