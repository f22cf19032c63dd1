/**
 * The action's main step: inputs → BuildOptions → the build core → outputs and summary.
 * Every credential is masked before anything is printed.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { isAbsolute, join, relative } from 'node:path';
import * as core from '@actions/core';
import { locateErrorInSource } from '../build-report.js';
import { runBuild } from '../build-runner.js';
import { buildOptionsFromArguments } from '../cli-options.js';
import { writeDockerConfig } from '../docker-config.js';
import { spawnInheriting } from '../privilege.js';
import { withoutVariables } from '../inputs.js';
import { writeSecretFiles } from '../secret-files.js';
import { currentProcess, stateKeys, type ActionProcess } from './cleanup.js';
import { resolveRegistryLogin } from './credentials.js';
import { readActionInputs, toCliArguments } from './inputs.js';
import { actionOutputs, addBuildSummary } from './outputs.js';

/** GitHub wants annotation paths relative to the workspace. */
function annotationPath(file: string, env: NodeJS.ProcessEnv, cwd: string): string {
  const workspace = env.GITHUB_WORKSPACE || cwd;
  const absolute = isAbsolute(file) ? file : join(cwd, file);
  const inside = relative(workspace, absolute);
  return inside.startsWith('..') || isAbsolute(inside) ? file : inside;
}

/** Reports a failure: at its Dockerfile line when the message names one, else as a plain error. */
export function reportFailure(error: unknown, dockerfile: string, env: NodeJS.ProcessEnv, cwd: string): void {
  const message = error instanceof Error ? error.message : String(error);
  const located = locateErrorInSource(message, dockerfile);
  if (located) {
    core.error(located.message, { title: 'kiln build failed', file: annotationPath(located.file, env, cwd), startLine: located.line });
    process.exitCode = 1;
    return;
  }
  core.setFailed(message);
}

/**
 * RUN steps print whatever they like; between `::stop-commands::` and its token GitHub does not
 * read `::…::` lines, so a build cannot set outputs or masks of its own.
 */
async function withoutWorkflowCommands<T>(use: () => Promise<T>): Promise<T> {
  const token = randomUUID();
  process.stdout.write(`::stop-commands::${token}\n`);
  try {
    return await use();
  } finally {
    process.stdout.write(`::${token}::\n`);
  }
}

export async function runAction(proc: ActionProcess = currentProcess()): Promise<void> {
  let dockerfile = '';
  try {
    for (const name of ['password', 'github-token']) {
      const secret = core.getInput(name);
      if (secret !== '') core.setSecret(secret);
    }
    const inputs = readActionInputs((name) => core.getInput(name));
    dockerfile = inputs.file;
    for (const secret of inputs.secrets) if (secret.value !== '') core.setSecret(secret.value);
    const workDir = await mkdtemp(join(proc.env.RUNNER_TEMP || tmpdir(), 'kiln-'));
    core.saveState(stateKeys.workDir, workDir);
    const env = withoutVariables(proc.env, ['INPUT_']);
    const login = resolveRegistryLogin(inputs, proc.env);
    if (login) {
      const dockerConfig = join(workDir, 'docker-config');
      core.saveState(stateKeys.dockerConfig, dockerConfig);
      env.DOCKER_CONFIG = await writeDockerConfig(dockerConfig, [login], proc.env);
      core.info(`kiln: logging in to ${login.registry} as ${login.username}`);
    }
    const secretFiles = await writeSecretFiles(join(workDir, 'secrets'), inputs.secrets);
    const options = buildOptionsFromArguments(toCliArguments(inputs, { kilnDir: join(workDir, 'kiln'), secretFiles }), env);
    const report = await core.group('Build', () => withoutWorkflowCommands(() =>
      runBuild(options, { ...proc, env, workDir, stderr: process.stderr, run: spawnInheriting }),
    ));
    const outputs = actionOutputs(report);
    for (const [name, value] of Object.entries(outputs)) core.setOutput(name, value);
    core.info(`kiln: ${report.digest}`);
    // Outside a runner (a local dry run of the action) there is no summary file to write to.
    if (proc.env.GITHUB_STEP_SUMMARY) await addBuildSummary(core.summary, report).write();
  } catch (error) {
    reportFailure(error, dockerfile, proc.env, proc.cwd);
  }
}
