// The whole battery, in the order it runs.

import type { Probe } from '../types.ts';
import { CONTROL_PLANE_PROBES } from './control-plane.ts';
import { CREDENTIAL_PROBES } from './credentials.ts';
import { CROSS_SESSION_PROBES } from './cross-session.ts';
import { FILESYSTEM_PROBES } from './filesystem.ts';
import { NETWORK_PROBES } from './network.ts';

export const PROBES: readonly Probe[] = [...CONTROL_PLANE_PROBES, ...FILESYSTEM_PROBES, ...CROSS_SESSION_PROBES, ...NETWORK_PROBES, ...CREDENTIAL_PROBES];
