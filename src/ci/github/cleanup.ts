/** The post step: remove what main wrote, the credentials and the work directory (which holds them). */
import * as core from '@actions/core';
import { removeDirectory, spawnInheriting } from '../privilege.js';

/** Names under which main hands its directories to post (core.saveState). */
export const stateKeys = { workDir: 'kiln-work-dir', dockerConfig: 'kiln-docker-config' } as const;

export interface ActionProcess {
  env: NodeJS.ProcessEnv;
  uid: number;
  nodePath: string;
  script: string;
  cwd: string;
}

export function currentProcess(): ActionProcess {
  return { env: process.env, uid: process.getuid?.() ?? 0, nodePath: process.execPath, script: process.argv[1] ?? '', cwd: process.cwd() };
}

/** Removes what main wrote: the credentials and the work directory (which holds them). */
export async function runPost(proc: ActionProcess = currentProcess()): Promise<void> {
  try {
    for (const key of [stateKeys.dockerConfig, stateKeys.workDir]) {
      const dir = core.getState(key);
      if (dir !== '') await removeDirectory(dir, proc.uid, spawnInheriting);
    }
  } catch (error) {
    core.warning(`kiln: cleaning up failed: ${error instanceof Error ? error.message : String(error)}`);
  }
}
