/** The Azure Pipelines task: `INPUT_*`/`ENDPOINT_*` → BuildOptions → the build core → output variables. */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { locateErrorInSource } from '../build-report.js';
import { runBuild } from '../build-runner.js';
import { removeDirectory, spawnInheriting } from '../privilege.js';
import { buildOptionsFromArguments } from '../cli-options.js';
import { writeDockerConfig } from '../docker-config.js';
import { withoutVariables } from '../inputs.js';
import { imageReferences, readServiceConnection, readTaskInputs, toCliArguments } from './inputs.js';
import { azureLog, type AzureLog } from './logging-commands.js';

export interface TaskProcess {
  env: NodeJS.ProcessEnv;
  uid: number;
  nodePath: string;
  script: string;
  cwd: string;
}

export function currentTaskProcess(): TaskProcess {
  return { env: process.env, uid: process.getuid?.() ?? 0, nodePath: process.execPath, script: process.argv[1] ?? '', cwd: process.cwd() };
}

/** Runs the task; returns the exit code. The work directory (credentials included) is gone when it returns. */
export async function runTask(proc: TaskProcess = currentTaskProcess(), log: AzureLog = azureLog((line) => process.stdout.write(`${line}\n`))): Promise<number> {
  let workDir: string | undefined;
  let dockerfile = '';
  try {
    const inputs = readTaskInputs(proc.env, proc.cwd);
    dockerfile = inputs.dockerfile;
    const login = inputs.containerRegistry === '' ? undefined : readServiceConnection(proc.env, inputs.containerRegistry);
    if (login?.password) log.setSecret(login.password);
    workDir = await mkdtemp(join(proc.env.AGENT_TEMPDIRECTORY || tmpdir(), 'kiln-'));
    const env = withoutVariables(proc.env, ['INPUT_', 'ENDPOINT_AUTH_']);
    if (login) {
      env.DOCKER_CONFIG = await writeDockerConfig(join(workDir, 'docker-config'), [login], proc.env);
      log.info(`kiln: logging in to ${login.registry} as ${login.username}`);
    }
    const destinations = imageReferences(inputs, login?.registry);
    const options = buildOptionsFromArguments(toCliArguments(inputs, destinations, join(workDir, 'kiln')), env);
    const report = await runBuild(options, { ...proc, env, workDir, stderr: process.stderr, run: spawnInheriting });
    log.setOutputVariable('digest', report.digest);
    log.setOutputVariable('imageId', report.imageId);
    log.setOutputVariable('images', report.images.join(','));
    log.info(`kiln: ${report.digest}`);
    return 0;
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    const located = locateErrorInSource(message, dockerfile);
    log.error(located?.message ?? message, located);
    log.fail(message);
    return 1;
  } finally {
    if (workDir !== undefined) await removeDirectory(workDir, proc.uid, spawnInheriting);
  }
}
