// The few Reflect metadata functions @peculiar/x509's dependency injection
// (tsyringe) needs at load time, for when the reflect-metadata package is not
// installed. Imported by ca.ts before @peculiar/x509. It defines nothing when
// a polyfill is already present, and holds only class metadata (no session
// state), so many sessions share it safely.

type Target = object;
type MetaReflect = typeof Reflect & {
  getMetadata?: (key: unknown, target: Target) => unknown;
  getOwnMetadata?: (key: unknown, target: Target) => unknown;
  defineMetadata?: (key: unknown, value: unknown, target: Target) => void;
  hasMetadata?: (key: unknown, target: Target) => boolean;
  metadata?: (key: unknown, value: unknown) => (target: Target) => void;
};

const R = Reflect as MetaReflect;
if (typeof R.getMetadata !== 'function') {
  const store = new WeakMap<Target, Map<unknown, unknown>>();
  const own = (key: unknown, target: Target): unknown => store.get(target)?.get(key);
  const define = (key: unknown, value: unknown, target: Target): void => {
    let m = store.get(target);
    if (!m) store.set(target, (m = new Map()));
    m.set(key, value);
  };
  const lookup = (key: unknown, target: Target): unknown => {
    for (let t: Target | null = target; t !== null; t = Object.getPrototypeOf(t) as Target | null) {
      const m = store.get(t);
      if (m?.has(key)) return m.get(key);
    }
    return undefined;
  };
  Object.assign(R, {
    getMetadata: lookup,
    getOwnMetadata: own,
    defineMetadata: define,
    hasMetadata: (key: unknown, target: Target) => lookup(key, target) !== undefined,
    metadata: (key: unknown, value: unknown) => (target: Target) => define(key, value, target),
  });
}

export {};
