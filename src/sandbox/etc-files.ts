// The sandbox's /etc: a small per-session directory, mounted read-only. It
// holds generated files (an account database naming only the sandbox user, a
// host name, a resolver configuration) and copies of the few host files that
// dynamic linking, TLS, locales, time zones and name lookup need. Large
// directories (CA certificates, terminfo) are bound read-only on top instead of
// copied. Nothing else of the host's /etc (shadow, sudoers, ssh host keys,
// docker or cloud configs) exists inside.
//
// One directory mount plus a handful of binds: every bind mount costs bwrap
// about a quarter of a millisecond, so copying small files is cheaper.

import { copyFileSync, lstatSync, mkdirSync, readdirSync, readlinkSync, symlinkSync, writeFileSync, type Stats } from 'node:fs';
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
const COPY_MAX_ENTRIES = 400;

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
