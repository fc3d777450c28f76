// Whether this process may use a path in a given way (no exception on "no").

import { accessSync, constants } from 'node:fs';

export function canAccess(path: string, mode: 'read' | 'write' | 'exec'): boolean {
  try {
    accessSync(path, mode === 'read' ? constants.R_OK : mode === 'write' ? constants.W_OK : constants.X_OK);
    return true;
  } catch {
    return false;
  }
}
