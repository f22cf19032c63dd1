/**
 * The GitHub Action's non-root path with the real sudo: GitHub-hosted runners run a job as an
 * ordinary user with passwordless sudo. The bundled action, run as a throw-away user of that kind,
 * re-runs itself under `sudo -n`, runs the RUN step as root and pushes to a real registry; the post
 * step, as the same user, removes what root left. A user without sudo gets an error saying what the
 * job needs. (ci-privileged-build.test.ts covers the same round trip with sudo stood in for.)
 */
import { copyFile, chmod, chown, mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pushBusyboxImage } from '../harness/base-images.js';
import { runCommand, type CommandResult } from '../harness/command.js';
import { actionStepEnv, parseFileCommands, postStepEnv, type ActionStepFiles } from '../harness/github-action.js';
import { Podman } from '../harness/podman.js';
import { runTool } from '../harness/process.js';
import { startRegistry, type TestRegistry } from '../harness/registry.js';
import { createThrowawayUser, type ThrowawayUser } from '../harness/throwaway-user.js';

const dist = path.resolve(import.meta.dirname, '../../dist');

describe('the GitHub Action as an ordinary user, through the real sudo', () => {
  let work: string;
  let actionDir: string;
  let registry: TestRegistry;
  let securedRegistry: TestRegistry;
  let podman: Podman;
  let base: string;
  let withSudo: ThrowawayUser;
  let withoutSudo: ThrowawayUser;
  let counter = 0;

  beforeAll(async () => {
    work = await mkdtemp(path.join(os.tmpdir(), 'kiln-ci-sudo-e2e-'));
    // mkdtemp makes it 0700: the users must get through to their homes and steps below it.
    await chmod(work, 0o755);
    // The checkout may sit under a directory only root may enter (CI clones anywhere), so the
    // users run a copy of the bundles, which need nothing else at run time.
    actionDir = path.join(work, 'action');
    await mkdir(actionDir);
    for (const bundle of ['github-main.js', 'github-post.js']) await copyFile(path.join(dist, bundle), path.join(actionDir, bundle));
    withSudo = await createThrowawayUser({ home: path.join(work, 'home-sudo'), passwordlessSudo: true, scratchDir: work });
    withoutSudo = await createThrowawayUser({ home: path.join(work, 'home-nosudo'), passwordlessSudo: false, scratchDir: work });
    registry = await startRegistry('plain');
    base = (await pushBusyboxImage({ registry: registry.host, skopeoDestArgs: registry.skopeoDestArgs() })).reference;
    securedRegistry = await startRegistry('basic');
    podman = await Podman.create();
  });
  afterAll(async () => {
    // Every clean-up runs whatever happened before it; the first failure is reported afterwards.
    const outcomes = await Promise.allSettled([withSudo?.remove(), withoutSudo?.remove(), registry?.stop(), securedRegistry?.stop(), podman?.dispose()]);
    if (work !== undefined) await rm(work, { recursive: true, force: true });
    for (const outcome of outcomes) if (outcome.status === 'rejected') throw outcome.reason;
  });

  /** A runner's step files, all owned by the user, with the Dockerfile in workspace/app. */
  async function step(user: ThrowawayUser, dockerfile: string): Promise<ActionStepFiles> {
    const root = path.join(work, `run-${++counter}`);
    const files: ActionStepFiles = {
      workspace: path.join(root, 'workspace'),
      temp: path.join(root, 'runner-temp'),
      home: user.home,
      output: path.join(root, 'output'),
      summary: path.join(root, 'summary'),
      state: path.join(root, 'state'),
    };
    await mkdir(root, { mode: 0o755 });
    for (const dir of [files.workspace, files.temp, path.join(files.workspace, 'app')]) await mkdir(dir);
    for (const file of [files.output, files.summary, files.state]) await writeFile(file, '');
    await writeFile(path.join(files.workspace, 'app', 'Dockerfile'), dockerfile.replaceAll('BASE_IMAGE', base));
    const owned = [files.workspace, files.temp, path.join(files.workspace, 'app'), path.join(files.workspace, 'app', 'Dockerfile'), files.output, files.summary, files.state];
    for (const entry of owned) await chown(entry, user.uid, user.gid);
    return files;
  }

  /** Runs a bundle as the user, with exactly the given environment (what the runner gives it). */
  function runAs(user: ThrowawayUser, bundle: string, env: NodeJS.ProcessEnv, cwd: string): Promise<CommandResult> {
    const ids = ['--reuid', String(user.uid), '--regid', String(user.gid), '--init-groups'];
    return runCommand('setpriv', [...ids, process.execPath, path.join(actionDir, bundle)], { env, cwd, timeoutMs: 300_000 });
  }

  it('builds with RUN as root under sudo -n, sets the outputs and summary; post removes what root left', async () => {
    const files = await step(withSudo, 'FROM BASE_IMAGE\nRUN id -u > /who && cat /proc/self/status | grep CapEff > /caps\n');
    const out = path.join(files.workspace, 'out');
    await mkdir(out);
    await chown(out, withSudo.uid, withSudo.gid);
    const tag = `${registry.host}/sudo/app:1`;
    const extraArgs = '--digest-file out/digest --tar-path out/image.tar --oci-layout-path out/layout';
    const env = actionStepEnv(files, { context: 'app', tags: tag, push: 'true', 'extra-args': extraArgs });
    const main = await runAs(withSudo, 'github-main.js', env, files.workspace);
    expect(main.stdout + main.stderr).not.toMatch(/::error/);
    expect(main.exitCode).toBe(0);

    const outputs = parseFileCommands(await readFile(files.output, 'utf8'));
    const { stdout: inspected } = await runTool('skopeo', ['inspect', '--tls-verify=false', `docker://${tag}`]);
    const digest = (JSON.parse(inspected) as { Digest: string }).Digest;
    expect(outputs.digest).toBe(digest);
    expect(outputs.images).toBe(`${tag}@${digest}`);
    expect(await readFile(files.summary, 'utf8')).toContain(digest);
    // What the build wrote for the job is the job user's, or a later step could not change or remove it.
    expect(await readFile(path.join(out, 'digest'), 'utf8')).toBe(digest);
    const outputOwners = (await readdir(out, { recursive: true })).map(async (name) => (await stat(path.join(out, name))).uid);
    expect(new Set(await Promise.all(outputOwners))).toEqual(new Set([withSudo.uid]));

    // The RUN ran as root with Docker's default capabilities: the build really went through sudo.
    const ran = await podman.runOk(`${tag}@${digest}`, { command: ['cat', '/who', '/caps'] });
    const [who, caps] = ran.stdout.split('\n');
    expect(who).toBe('0');
    expect(BigInt(`0x${caps?.split(':')[1]?.trim()}`)).toBe(0xa80425fbn);

    // What the privileged child left in the work directory is root's, and only sudo can remove it.
    const state = parseFileCommands(await readFile(files.state, 'utf8'));
    const workDir = state['kiln-work-dir'] ?? '';
    expect(path.dirname(workDir)).toBe(files.temp);
    const owners = await Promise.all((await readdir(workDir)).map(async (name) => (await stat(path.join(workDir, name))).uid));
    expect(owners).toContain(0);
    expect(await readdir(workDir)).not.toContain('build-request.json');

    const post = await runAs(withSudo, 'github-post.js', postStepEnv(env, state), files.workspace);
    expect(post.stdout).not.toMatch(/::warning/);
    expect(post.exitCode).toBe(0);
    expect(await readdir(files.temp)).toEqual([]);
  });

  it("pushes with the login an earlier step (docker/login-action) left in the user's ~/.docker/config.json", async () => {
    const files = await step(withSudo, 'FROM BASE_IMAGE\nRUN echo as-root > /proof\n');
    const dockerDir = path.join(withSudo.home, '.docker');
    await mkdir(dockerDir, { mode: 0o700 });
    const auth = Buffer.from(`${securedRegistry.username}:${securedRegistry.password}`).toString('base64');
    await writeFile(path.join(dockerDir, 'config.json'), JSON.stringify({ auths: { [securedRegistry.host]: { auth } } }), { mode: 0o600 });
    for (const entry of [dockerDir, path.join(dockerDir, 'config.json')]) await chown(entry, withSudo.uid, withSudo.gid);
    const tag = `${securedRegistry.host}/sudo/login:1`;
    const main = await runAs(withSudo, 'github-main.js', actionStepEnv(files, { context: 'app', tags: tag, push: 'true' }), files.workspace);
    expect(main.stdout + main.stderr).not.toMatch(/::error/);
    expect(main.exitCode).toBe(0);
    const inspectArgs = securedRegistry.skopeoSrcArgs().map((arg) => arg.replace(/^--src-/, '--'));
    const { stdout: inspected } = await runTool('skopeo', ['inspect', ...inspectArgs, `docker://${tag}`]);
    expect(parseFileCommands(await readFile(files.output, 'utf8')).digest).toBe((JSON.parse(inspected) as { Digest: string }).Digest);
  });

  it('fails, saying what the job needs, when the user may not use sudo without a password', async () => {
    const files = await step(withoutSudo, 'FROM BASE_IMAGE\nRUN true\n');
    const env = actionStepEnv(files, { context: 'app', tags: `${registry.host}/sudo/denied:1`, push: 'true' });
    const main = await runAs(withoutSudo, 'github-main.js', env, files.workspace);
    expect(main.exitCode).toBe(1);
    const errors = main.stdout.split('\n').filter((line) => line.startsWith('::error'));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/needs root/);
    expect(errors[0]).toMatch(/NOPASSWD/);
    expect(errors[0]).toMatch(/--user root/);
    expect(await readFile(files.output, 'utf8')).toBe('');

    const state = parseFileCommands(await readFile(files.state, 'utf8'));
    const post = await runAs(withoutSudo, 'github-post.js', postStepEnv(env, state), files.workspace);
    expect(post.exitCode).toBe(0);
    expect(await readdir(files.temp)).toEqual([]);
  });
});
