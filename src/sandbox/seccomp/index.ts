// The seccomp filter of the bwrap backend: the policy as data (rules.ts) and
// its compilation to a cached BPF file (compile.ts).

export { SECCOMP_BADARCH, SECCOMP_DEFAULT, SECCOMP_RULES, describeRules, renderRules } from './rules.ts';
export type { ArgCondition, CompareOp, RuleGroup, SeccompErrno, SeccompRule } from './rules.ts';
export { SECCOMP_EXPORT_PATH, compileSeccompRules, seccompFilterPath } from './compile.ts';
export type { SeccompFilterOptions } from './compile.ts';
