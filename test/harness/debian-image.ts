/**
 * A Debian base image for end-to-end tests, made here without pulling any image: `debootstrap
 * --variant=minbase bookworm` from the Debian mirror apt is configured with (read at run time,
 * never written down), scrubbed of that mirror's address, packed by umoci into an OCI layout.
 * The layout is cached between test runs (`$KILN_TEST_CACHE`, default /var/tmp/kiln-test-cache),
 * keyed by suite, architecture, debootstrap's version and this recipe's version; building it takes
 * about 30 s, pushing it from the cache about a second. Follows ../shared/tools/make-debian-image.sh.
 */
import { mkdir, mkdtemp, open, readFile, readdir, rename, rm, stat, writeFile, unlink } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { runCommand } from './command.js';
import { removeWithMounts } from './containers.js';
import type { PushedBaseImage } from './base-images.js';
import { runTool } from './process.js';

/** Bumped whenever what goes into the image changes, so stale caches are not used. */
const recipeVersion = 1;
const tag = 'image';

export interface DebianImageOptions {
  suite?: string;
  /** Default `$KILN_TEST_CACHE`, else /var/tmp/kiln-test-cache. */
  cacheDir?: string;
  /** Progress lines (build steps and times). */
  log?: (line: string) => void;
}

export interface DebianLayout {
  /** skopeo/umoci reference of the cached image: `oci:/…/debian-….oci:image`. */
  ociReference: string;
  layoutPath: string;
  /** False when it was built by this call. */
  fromCache: boolean;
}

export class DebianImageError extends Error {
  constructor(message: string, readonly logTail: string) {
    super(`${message}${logTail ? `\n${logTail}` : ''}`);
    this.name = 'DebianImageError';
  }
}

export function defaultCacheDir(): string {
  return process.env.KILN_TEST_CACHE ?? '/var/tmp/kiln-test-cache';
}

/** The cached layout, built first when missing. Concurrent callers (test workers) build it once. */
export async function ensureDebianLayout(options: DebianImageOptions = {}): Promise<DebianLayout> {
  const suite = options.suite ?? 'bookworm';
  const cacheDir = options.cacheDir ?? defaultCacheDir();
  const log = options.log ?? (() => undefined);
  await mkdir(cacheDir, { recursive: true });
  const arch = (await runTool('dpkg', ['--print-architecture'])).stdout.trim();
  const debootstrapVersion = (await runTool('dpkg-query', ['-W', '-f=${Version}', 'debootstrap'])).stdout.trim();
  const key = `debian-${suite}-${arch}-debootstrap_${debootstrapVersion}-r${recipeVersion}`.replace(/[^A-Za-z0-9._-]/g, '_');
  const layoutPath = path.join(cacheDir, `${key}.oci`);
  const result = (fromCache: boolean): DebianLayout => ({ ociReference: `oci:${layoutPath}:${tag}`, layoutPath, fromCache });
  if (await isLayout(layoutPath)) return result(true);
  return withFileLock(path.join(cacheDir, `${key}.lock`), async () => {
    if (await isLayout(layoutPath)) return result(true);
    const work = await mkdtemp(path.join(cacheDir, `.build-${key}-`));
    try {
      await buildLayout({ suite, arch, work, log });
      await rename(path.join(work, 'oci'), layoutPath);
      return result(false);
    } finally {
      await removeWithMounts(work);
    }
  });
}

/** Pushes the (cached) Debian image; `image` defaults to `debian:<suite>`. */
export async function pushDebianImage(
  options: DebianImageOptions & { registry: string; skopeoDestArgs: readonly string[]; image?: string },
): Promise<PushedBaseImage & DebianLayout> {
  const layout = await ensureDebianLayout(options);
  const reference = `${options.registry}/${options.image ?? `debian:${options.suite ?? 'bookworm'}`}`;
  await runTool('skopeo', ['copy', '--quiet', ...options.skopeoDestArgs, layout.ociReference, `docker://${reference}`]);
  const srcArgs = options.skopeoDestArgs.map((arg) => arg.replace(/^--dest-/, '--'));
  const { stdout } = await runTool('skopeo', ['inspect', '--raw', ...srcArgs, `docker://${reference}`]);
  return { ...layout, reference, rawManifest: stdout };
}

async function buildLayout(options: { suite: string; arch: string; work: string; log: (line: string) => void }): Promise<void> {
  const { suite, arch, work, log } = options;
  const mirror = await aptMirror(suite);
  const mirrorHost = new URL(mirror).hostname;
  const rootfs = path.join(work, 'rootfs');
  const started = Date.now();
  const bootstrap = await runCommand('debootstrap', [`--variant=minbase`, `--arch=${arch}`, suite, rootfs, mirror], { timeoutMs: 600_000 });
  if (bootstrap.exitCode !== 0) {
    // Its output names the mirror: masked before it can reach a test log.
    const tail = (bootstrap.stdout + bootstrap.stderr).split('\n').slice(-20).join('\n').split(mirrorHost).join('<mirror>');
    throw new DebianImageError(`debootstrap ${suite} failed with exit code ${bootstrap.exitCode}`, tail);
  }
  log(`debootstrap ${suite}: ${((Date.now() - started) / 1000).toFixed(1)} s`);
  await scrub(rootfs, mirrorHost);

  const layout = path.join(work, 'oci');
  const image = `${layout}:${tag}`;
  await runTool('umoci', ['init', '--layout', layout]);
  await runTool('umoci', ['new', '--image', image]);
  await runTool('umoci', ['insert', '--rootless=false', '--image', image, rootfs, '/']);
  await runTool('umoci', [
    'config', '--image', image, `--architecture=${arch}`, '--os=linux', '--config.cmd=bash',
    '--config.env=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    '--created=2024-01-01T00:00:00Z',
  ]);
  await runTool('umoci', ['gc', '--layout', layout]);
  log(`debian ${suite} layout ready: ${((Date.now() - started) / 1000).toFixed(1)} s in all`);
}

/**
 * The configured mirror must not end up in the image: apt's sources and lists go, and anything
 * left in apt's state or config that names the mirror host fails the build. Files shipped verbatim
 * by packages (apt's example sources) may name Debian's default host: those are package content.
 */
async function scrub(rootfs: string, mirrorHost: string): Promise<void> {
  const at = (relative: string): string => path.join(rootfs, relative);
  await writeFile(at('etc/apt/sources.list'), '# no apt sources configured in this image; add one at build time\n');
  for (const dir of ['etc/apt/sources.list.d', 'var/lib/apt/lists']) await emptyDir(at(dir));
  for (const dir of ['var/cache/apt', 'var/cache/apt/archives']) {
    for (const name of await readdirIfExists(at(dir))) {
      if (name.endsWith('.bin') || name.endsWith('.deb')) await rm(path.join(at(dir), name), { force: true });
    }
  }
  await rm(at('var/log/bootstrap.log'), { force: true });
  await rm(at('debootstrap'), { recursive: true, force: true });
  await mkdir(at('var/lib/apt/lists/partial'), { recursive: true });
  for (const file of ['etc/resolv.conf', 'etc/hostname']) {
    await rm(at(file), { force: true });
    await writeFile(at(file), '');
  }
  // machine-id must be empty in images (systemd makes one at first boot).
  if ((await ifExists(stat(at('etc/machine-id')))) !== undefined) await writeFile(at('etc/machine-id'), '');
  const left = await runCommand('grep', ['-rIl', '-F', mirrorHost, at('etc'), at('var/lib/apt'), at('var/cache/apt'), at('var/log')]);
  if (left.exitCode === 0) throw new DebianImageError('the mirror host is still named in the image (apt state or config):', left.stdout.split(rootfs).join(''));
  if (left.exitCode !== 1) throw new DebianImageError(`grep for the mirror host failed (exit ${left.exitCode})`, left.stderr);
}

async function emptyDir(dir: string): Promise<void> {
  for (const name of await readdirIfExists(dir)) await rm(path.join(dir, name), { recursive: true, force: true });
}

// ---------------------------------------------------------------------------------------------
// apt's configured mirror

export interface AptSourceFile {
  name: string;
  text: string;
}

/**
 * The archive URI apt is configured with for `suite` (the first `deb` source serving exactly that
 * suite, so -security and -updates are passed over), without a trailing slash.
 */
export async function aptMirror(suite: string, aptDir = '/etc/apt'): Promise<string> {
  const files: AptSourceFile[] = [];
  const read = async (file: string): Promise<void> => {
    const text = await ifExists(readFile(file, 'utf8'));
    if (text !== undefined) files.push({ name: path.basename(file), text });
  };
  await read(path.join(aptDir, 'sources.list'));
  const listDir = path.join(aptDir, 'sources.list.d');
  for (const name of (await readdirIfExists(listDir)).sort()) await read(path.join(listDir, name));
  const mirror = mirrorFromSources(files, suite);
  if (mirror === undefined) throw new Error(`apt has no deb source for suite ${suite} under ${aptDir}`);
  return mirror;
}

/** deb822 `*.sources` stanzas first, then one-line `sources.list` / `*.list` entries; other files are ignored. */
export function mirrorFromSources(files: readonly AptSourceFile[], suite: string): string | undefined {
  const candidates: string[] = [];
  for (const file of files.filter((f) => f.name.endsWith('.sources'))) {
    for (const stanza of file.text.split(/\n\s*\n/)) {
      const fields = new Map<string, string[]>();
      for (const line of stanza.split('\n')) {
        if (line.startsWith('#') || /^\s/.test(line) || !line.includes(':')) continue;
        const cut = line.indexOf(':');
        fields.set(line.slice(0, cut).trim().toLowerCase(), line.slice(cut + 1).trim().split(/\s+/).filter(Boolean));
      }
      const enabled = (fields.get('enabled')?.[0] ?? 'yes').toLowerCase() !== 'no';
      if (enabled && fields.get('types')?.includes('deb') && fields.get('suites')?.includes(suite)) {
        candidates.push(...(fields.get('uris') ?? []));
      }
    }
  }
  for (const file of files.filter((f) => f.name === 'sources.list' || f.name.endsWith('.list'))) {
    for (const raw of file.text.split('\n')) {
      const line = raw.split('#')[0]?.trim() ?? '';
      const match = /^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)/.exec(line);
      if (match?.[2] === suite && match[1] !== undefined) candidates.push(match[1]);
    }
  }
  return candidates[0]?.replace(/\/+$/, '');
}

// ---------------------------------------------------------------------------------------------

/** The promise's value, or undefined when it failed because the path does not exist. */
async function ifExists<T>(promise: Promise<T>): Promise<T | undefined> {
  try {
    return await promise;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

async function readdirIfExists(dir: string): Promise<string[]> {
  return (await ifExists(readdir(dir))) ?? [];
}

async function isLayout(dir: string): Promise<boolean> {
  return (await ifExists(stat(path.join(dir, 'index.json')))) !== undefined;
}

/**
 * A lock file holding its owner's pid (created with O_EXCL): a second test worker waits for the
 * first one's build rather than repeating it; a lock left by a dead process is taken over.
 */
async function withFileLock<T>(lockPath: string, body: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + 15 * 60_000;
  for (;;) {
    try {
      const handle = await open(lockPath, 'wx');
      await handle.writeFile(String(process.pid));
      await handle.close();
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      // The owner may release it between our open and this read: then there is no owner to wait for.
      const owner = Number((await ifExists(readFile(lockPath, 'utf8')))?.trim() ?? '');
      if (!(owner > 0)) continue;
      if (owner !== process.pid && !isAlive(owner)) {
        await ifExists(unlink(lockPath)); // another waiter may have removed the stale lock first
        continue;
      }
      if (Date.now() > deadline) throw new Error(`waited 15 minutes for ${lockPath} (held by pid ${owner})`, { cause: error });
      await sleep(500);
    }
  }
  try {
    return await body();
  } finally {
    await unlink(lockPath);
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
