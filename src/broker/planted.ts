// What the session puts inside the sandbox: environment variables and files
// holding placeholders and canaries. Computed once at issue time, so a clash
// (two things wanting the same variable or file) fails the session start.
//
//   token binding   env: NAME=<placeholder>; file: "<placeholder>\n"
//   aws binding     env: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY; file: an
//                   aws credentials profile ([default], then [<secret name>])
//   canary          env: a decoy value; file: a decoy token file, netrc, or
//                   aws credentials file. An aws-credentials canary sharing a
//                   file with aws bindings becomes one more profile there.

import { CordonError } from '../errors.ts';
import type { PlantedFile } from './types.ts';
import { awsProfileText } from './aws-keys.ts';
import type { CredentialBook } from './book.ts';

export interface Planted {
  env: Record<string, string>;
  files: PlantedFile[];
}

function expand(path: string, home: string): string {
  if (path === '~') return home;
  if (path.startsWith('~/')) return `${home.replace(/\/+$/, '')}/${path.slice(2)}`;
  return path;
}

function clash(what: string): never {
  throw new CordonError('CORDON_POLICY_INVALID', `credentials: ${what} is planted twice (two bindings or canaries want it)`, {
    hint: 'give each binding and canary its own env variable and file',
  });
}

export function plan(book: CredentialBook, home: string): Planted {
  const env: Record<string, string> = {};
  const setEnv = (name: string, value: string) => {
    if (Object.hasOwn(env, name)) clash(`the variable ${name}`);
    env[name] = value;
  };
  // path -> plain content, or a list of aws profiles
  const plain = new Map<string, string>();
  const profiles = new Map<string, Array<{ name: string | null; id: string; key: string }>>();
  const addPlain = (path: string, content: string) => {
    if (plain.has(path) || profiles.has(path)) clash(`the file ${path}`);
    plain.set(path, content);
  };
  const addProfile = (path: string, name: string | null, id: string, key: string) => {
    if (plain.has(path)) clash(`the file ${path}`);
    const list = profiles.get(path) ?? [];
    list.push({ name, id, key });
    profiles.set(path, list);
  };

  for (const c of book.credentials) {
    const b = c.binding;
    if (b.kind === 'aws') {
      const ph = c.awsPlaceholder!;
      if (b.env !== null) {
        setEnv('AWS_ACCESS_KEY_ID', ph.accessKeyId);
        setEnv('AWS_SECRET_ACCESS_KEY', ph.secretAccessKey);
      }
      if (b.file !== null) addProfile(expand(b.file, home), b.secret, ph.accessKeyId, ph.secretAccessKey);
    } else {
      if (b.env !== null) setEnv(b.env, c.placeholder!);
      if (b.file !== null) addPlain(expand(b.file, home), `${c.placeholder!}\n`);
    }
  }
  for (const k of book.canaries) {
    if (k.canary.env !== null) setEnv(k.canary.env, k.values.envValue(k.canary.env));
    if (k.canary.file === null) continue;
    const path = expand(k.canary.file, home);
    if (k.canary.format === 'aws-credentials' && profiles.has(path)) {
      const [id, key] = k.values.values as [string, string];
      addProfile(path, `admin${k.index === 0 ? '' : `-${k.index}`}`, id, key);
    } else addPlain(path, k.values.fileText);
  }

  const files: PlantedFile[] = [...plain].map(([path, content]) => ({ path, content }));
  for (const [path, list] of profiles) {
    const used = new Set<string>();
    const text = list
      .map((p, i) => {
        let name = i === 0 ? 'default' : (p.name ?? `profile-${i}`);
        if (used.has(name)) name = `${name}-${i}`;
        used.add(name);
        return awsProfileText(name, p.id, p.key);
      })
      .join('\n');
    files.push({ path, content: text });
  }
  return { env, files };
}
