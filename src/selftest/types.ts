// The bypass battery: probes are data (an id, the matrix class, a shell script
// run inside a real session, and a host-side judgement) so that adding one is
// a few lines. The same battery is `cordon selftest` for users and the
// regression suite for the boundary in CI.

import type { AttackerInfo } from './attacker.ts';

export type Outcome = 'contained' | 'LEAKED' | 'not applicable' | 'error';

/** What the harness prepared on the host for a run (all paths are host paths). */
export interface Fixture {
  root: string;
  /** A throwaway home with planted fake secrets (the session's HOME). */
  home: string;
  /** The session's workspace (a git repository with nested repos and agent config). */
  workspace: string;
  /** A host directory outside the workspace, with a canary file. */
  outside: string;
  /** cordon's state/config/runtime directories for the run. */
  stateDir: string;
  configDir: string;
  runtimeDir: string;
  /** Canary tokens planted for this run: name -> unique value. */
  canaries: Record<string, string>;
  /** Environment for `cordon run` (HOME, CORDON_*_DIR, a canary variable). */
  env: NodeJS.ProcessEnv;
  /** Extra read-only paths the probes need inside (probe programs). */
  probeBin: string;
  /** The loopback attacker/legit endpoints the network probes aim at (absent: network probes do not apply). */
  attackers?: AttackerInfo;
  /** network.mode of the policy under test, when the harness knows it. */
  networkMode?: 'none' | 'proxy';
  /** network.budget of the policy under test (null values: unlimited), when the harness knows it. */
  budget?: { bytesUp: number | null; requests: number | null; destinations: number | null };
  /** The test credential in the fixture's vault (absent: the credential probes do not apply). See fixture.ts addTestCredential. */
  credentials?: SelftestCredentials;
}

/**
 * The battery's test credential: a random value (never a real credential) in
 * a file vault in the fixture's state directory, bound by the credentials
 * overlay (attacker.ts batteryPolicy) to the legit name. The real value is
 * also one of Fixture.canaries, so the output scan and the endpoints look for it.
 */
export interface SelftestCredentials {
  /** Name of the secret in the vault. */
  secret: string;
  /** Variable holding the placeholder inside the sandbox. */
  env: string;
  /** Kept at the start of the placeholder. */
  placeholderPrefix: string;
  /** Header the proxy injects the real value in, and the scheme before it. */
  header: string;
  scheme: string;
  /** A decoy token file planted inside by the policy (a canary), "~/..." */
  canaryFile: string;
  /** Key of the real value in Fixture.canaries. */
  realCanary: string;
}

export interface ProbeRun {
  status: number;
  stdout: string;
  stderr: string;
  sessionId: string | null;
}

export interface Peer {
  /** A second session kept running while the probe runs. */
  sessionId: string | null;
  workspace: string;
  canary: string;
  /** Host pid of the peer's cordon process. */
  pid: number;
  /** The peer's placeholder for the test credential (it ran under the credentials overlay), else absent or null. */
  placeholder?: string | null;
}

export interface ProbeContext {
  fixture: Fixture;
  peer: Peer | null;
}

export interface Probe {
  id: string;
  /** Class in shared/design/BYPASS-MATRIX.md. */
  class: number;
  title: string;
  /** sh script run inside the sandbox, in the workspace. */
  script: (ctx: ProbeContext) => string;
  /** Needs a second session running at the same time. */
  needsPeer?: boolean;
  /** Runs under the credentials overlay (BatteryOptions.credentialPolicyFile); without one it does not apply. */
  credentials?: boolean;
  /** Reason the probe does not apply here, or null. */
  applies?: (ctx: ProbeContext) => string | null;
  /**
   * Host-side judgement beyond the canary scan (which always applies): a
   * description of the leak, or null when contained.
   */
  leak?: (run: ProbeRun, ctx: ProbeContext) => string | null;
}

export interface ProbeResult {
  id: string;
  class: number;
  title: string;
  outcome: Outcome;
  /** Why: the leak, the reason it does not apply, or what the agent got. */
  detail: string;
  sessionId: string | null;
  /** Audit records that show the decision (seq and type). */
  evidence: { seq: number; type: string; summary: string }[];
  durationMs: number;
}
