/**
 * Reads a built image back without any of kiln's code, into a description two builds can be
 * compared by: skopeo fetches the manifest and config as the registry serves them and copies the
 * image into an OCI layout, umoci applies the layers (whiteouts included) into a root filesystem,
 * and every path is recorded with its type, mode, owner, size, link target and content hash.
 *
 * diffTrees() compares two descriptions and lists the differences in words, minus the documented
 * exceptions a fidelity test passes in `ignore`. A fidelity test reads:
 *
 *   const kiln = await readImageTree(kilnRef, { registry, reader: 'layers' });
 *   const peer = await readImageTree((await buildah.build({ context, destination, registry })).reference, { registry, reader: 'layers' });
 *   expect(diffTrees(kiln, peer, { ignore: [...buildahExceptions('b'), { path: '/x', fields: ['mode'], reason: '…' }] })).toEqual([]);
 *
 * findInImage() searches the manifest, config and every layer for a string (secrets tests);
 * listImageLayers() lists what each layer holds (what a build added, layer by layer).
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, mkdtemp, readdir, readlink, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { ContainerConfig, Descriptor, ImageConfig, Manifest } from '../../src/image/types.js';
import { registryFlags, type RegistryAccess } from './containers.js';
import { applyLayoutLayers, listLayoutLayers, searchLayoutLayers, type LayerHit, type LayerListing } from './layer-tree.js';
import { runTool } from './process.js';

export type EntryType = 'file' | 'directory' | 'symlink' | 'char-device' | 'block-device' | 'fifo' | 'socket';

export interface TreeEntry {
  /** Absolute, `/` for the root. */
  path: string;
  type: EntryType;
  /** Permission bits with setuid, setgid and sticky (`mode & 0o7777`). */
  mode: number;
  uid: number;
  gid: number;
  /** Regular files only (0 for the rest). */
  size: number;
  /** Symlinks only. */
  linkTarget?: string;
  /** Regular files only: hex sha256 of the content. */
  sha256?: string;
  /** Regular files only: how many paths share this inode (hard links within the image). */
  nlink?: number;
  /** Devices only: `major:minor`. */
  device?: string;
  /** Seconds since the epoch; compared only with `compareMtimes`. */
  mtime: number;
}

export type EntryField = Exclude<keyof TreeEntry, 'path'>;

/** The config fields compared by diffTrees. */
export const configFields = [
  'Env', 'Cmd', 'Entrypoint', 'WorkingDir', 'User', 'ExposedPorts', 'Volumes', 'Labels',
  'StopSignal', 'Healthcheck', 'OnBuild', 'Shell',
] as const satisfies readonly (keyof ContainerConfig)[];
export type ConfigField = (typeof configFields)[number];

export interface TreeHistoryEntry {
  created_by: string | undefined;
  empty_layer: boolean;
  comment: string | undefined;
}

export interface ImageTree {
  /** What was read (`docker://…`, `oci:…`, `docker-archive:…`). */
  source: string;
  /** As served; undefined when the manifest has no mediaType field (umoci's). */
  manifestMediaType: string | undefined;
  configMediaType: string;
  layers: readonly Descriptor[];
  architecture: string;
  os: string;
  /** The config's runtime part, only the fields in `configFields`, absent ones left out. */
  config: Partial<Pick<ContainerConfig, ConfigField>>;
  history: readonly TreeHistoryEntry[];
  /** The config blob exactly as served, parsed. */
  rawConfig: ImageConfig;
  /** Every path of the applied root filesystem, by path, in sorted order. */
  entries: ReadonlyMap<string, TreeEntry>;
}

export interface ReadImageTreeOptions {
  /** For `docker://` sources: how to reach the registry (plain HTTP without credentials when absent). */
  registry?: RegistryAccess;
  /**
   * `umoci` (default): `umoci raw unpack` to disk, then a walk of the root filesystem; the
   * independent reference. `layers`: the layers applied in memory by layer-tree.ts, ~5x faster on
   * a Debian image and checked against umoci by the harness self-test.
   */
  reader?: 'umoci' | 'layers';
}

/**
 * `source` is an image reference (`127.0.0.1:5000/app:1`, read from the registry) or a skopeo
 * transport reference (`oci:/path/layout:tag`, `docker-archive:/path/image.tar`).
 */
export async function readImageTree(source: string, options: ReadImageTreeOptions = {}): Promise<ImageTree> {
  const fetched = await fetchImage(source, options.registry);
  const { transportRef, work, layoutDir } = fetched;
  try {
    const manifest = JSON.parse(fetched.manifestText) as Manifest;
    const rawConfig = JSON.parse(fetched.configText) as ImageConfig;
    let entries: Map<string, TreeEntry>;
    if (options.reader === 'layers') {
      entries = await applyLayoutLayers(layoutDir);
    } else {
      const rootfs = path.join(work, 'rootfs');
      await runTool('umoci', ['raw', 'unpack', '--image', `${layoutDir}:image`, rootfs]);
      entries = new Map<string, TreeEntry>();
      await walk(rootfs, '/', entries);
    }
    const sorted = new Map([...entries.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    const runtime = rawConfig.config ?? {};
    const config: Partial<Pick<ContainerConfig, ConfigField>> = {};
    for (const field of configFields) {
      const value = runtime[field];
      if (value !== undefined) Object.assign(config, { [field]: value });
    }
    return {
      source: transportRef,
      manifestMediaType: manifest.mediaType,
      configMediaType: 'config' in manifest ? manifest.config.mediaType : '',
      layers: 'layers' in manifest ? manifest.layers : [],
      architecture: rawConfig.architecture,
      os: rawConfig.os,
      config,
      history: (rawConfig.history ?? []).map((entry) => ({
        created_by: entry.created_by,
        empty_layer: entry.empty_layer === true,
        comment: entry.comment,
      })),
      rawConfig,
      entries: sorted,
    };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

interface FetchedImage {
  transportRef: string;
  /** A temporary directory the caller removes. */
  work: string;
  /** An OCI layout in `work` holding the image as `:image`. */
  layoutDir: string;
  /** Manifest and config exactly as the source serves them. */
  manifestText: string;
  configText: string;
}

async function fetchImage(source: string, registry: RegistryAccess | undefined): Promise<FetchedImage> {
  const transportRef = /^(docker|oci|oci-archive|docker-archive|dir):/.test(source) ? source : `docker://${source}`;
  const inspectFlags = transportRef.startsWith('docker://') ? registryFlags(registry) : [];
  const copyFlags = inspectFlags.map((flag) => flag.replace(/^--/, '--src-'));
  const work = await mkdtemp(path.join(os.tmpdir(), 'kiln-image-tree-'));
  try {
    const manifestText = (await runTool('skopeo', ['inspect', '--raw', ...inspectFlags, transportRef])).stdout;
    const configText = (await runTool('skopeo', ['inspect', '--config', '--raw', ...inspectFlags, transportRef])).stdout;
    const layoutDir = path.join(work, 'oci');
    await runTool('skopeo', ['copy', '--quiet', ...copyFlags, transportRef, `oci:${layoutDir}:image`]);
    return { transportRef, work, layoutDir, manifestText, configText };
  } catch (error) {
    await rm(work, { recursive: true, force: true });
    throw error;
  }
}

export interface ImageHit {
  where: 'manifest' | 'config' | 'layer';
  /** Layers: the layer's digest, the entry's name in the tar and which part of it matched. */
  layer?: string;
  path?: string;
  part?: LayerHit['part'];
}

/**
 * Every place a string occurs in an image: the manifest, the config (history included) and every
 * layer (entries later deleted by a whiteout too). For proving a secret never reached the image.
 */
export async function findInImage(source: string, needle: string | Buffer, options: { registry?: RegistryAccess } = {}): Promise<ImageHit[]> {
  const bytes = Buffer.from(needle);
  const fetched = await fetchImage(source, options.registry);
  try {
    const hits: ImageHit[] = [];
    if (Buffer.from(fetched.manifestText).includes(bytes)) hits.push({ where: 'manifest' });
    if (Buffer.from(fetched.configText).includes(bytes)) hits.push({ where: 'config' });
    for (const hit of await searchLayoutLayers(fetched.layoutDir, bytes)) hits.push({ where: 'layer', ...hit });
    return hits;
  } finally {
    await rm(fetched.work, { recursive: true, force: true });
  }
}

/** Every layer of the image, in order, with the paths its tar holds (whiteouts included). */
export async function listImageLayers(source: string, options: { registry?: RegistryAccess } = {}): Promise<LayerListing[]> {
  const fetched = await fetchImage(source, options.registry);
  try {
    return await listLayoutLayers(fetched.layoutDir);
  } finally {
    await rm(fetched.work, { recursive: true, force: true });
  }
}

async function walk(hostPath: string, imagePath: string, into: Map<string, TreeEntry>): Promise<void> {
  const info = await lstat(hostPath);
  const entry: TreeEntry = {
    path: imagePath,
    type: entryType(info),
    mode: info.mode & 0o7777,
    uid: info.uid,
    gid: info.gid,
    size: info.isFile() ? info.size : 0,
    mtime: Math.floor(info.mtimeMs / 1000),
  };
  if (info.isSymbolicLink()) entry.linkTarget = await readlink(hostPath);
  if (info.isFile()) {
    entry.sha256 = await hashFile(hostPath);
    entry.nlink = info.nlink;
  }
  if (info.isCharacterDevice() || info.isBlockDevice()) entry.device = `${Math.floor(info.rdev / 256) & 0xfff}:${(info.rdev & 0xff) | ((info.rdev >> 12) & 0xfff00)}`;
  into.set(imagePath, entry);
  if (!info.isDirectory()) return;
  for (const name of await readdir(hostPath)) {
    await walk(path.join(hostPath, name), path.posix.join(imagePath, name), into);
  }
}

function entryType(info: Awaited<ReturnType<typeof lstat>>): EntryType {
  if (info.isFile()) return 'file';
  if (info.isDirectory()) return 'directory';
  if (info.isSymbolicLink()) return 'symlink';
  if (info.isCharacterDevice()) return 'char-device';
  if (info.isBlockDevice()) return 'block-device';
  if (info.isFIFO()) return 'fifo';
  return 'socket';
}

async function hashFile(file: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(file), hash);
  return hash.digest('hex');
}

// ---------------------------------------------------------------------------------------------
// Comparison

/**
 * A documented exception to fidelity. Strings are shorthands: `/path/glob` ignores those paths
 * entirely (`*` within a name, `**` across names, `/dir/**` also matches `/dir`), `config.Labels`
 * one config field, `history` the whole history, `history.created_by` one history field,
 * `platform` architecture and os.
 */
export type IgnoreRule =
  | string
  | { path: string | RegExp; fields?: readonly EntryField[]; reason?: string }
  | { config: ConfigField; keys?: readonly string[]; reason?: string }
  | { history: 'all' | 'created_by' | 'empty_layer' | 'comment'; reason?: string }
  /** Anything narrower: covers the differences the predicate accepts. */
  | { match: (difference: TreeDifference) => boolean; reason: string };

export interface DiffOptions {
  ignore?: readonly IgnoreRule[];
  /** mtimes differ between any two builds; compared only when asked. */
  compareMtimes?: boolean;
}

export interface TreeDifference {
  /** One readable line, e.g. `/app/run.sh: mode 0644 (a) vs 0755 (b)`. */
  message: string;
  kind: 'only-in-a' | 'only-in-b' | 'entry' | 'config' | 'history' | 'platform';
  /** The path, `config.X` or `history[i]`. */
  where: string;
  field: string;
  a: unknown;
  b: unknown;
}

export interface TreeComparison {
  differences: TreeDifference[];
  /** Differences a rule removed, with the rule: shows the documented exceptions did apply. */
  ignored: { difference: TreeDifference; rule: IgnoreRule }[];
  /** Rules that matched no difference (a stale exception, worth deleting). */
  unusedRules: IgnoreRule[];
}

/** The differences between two image descriptions that no `ignore` rule covers ([] when faithful). */
export function diffTrees(a: ImageTree, b: ImageTree, options: DiffOptions = {}): TreeDifference[] {
  return compareTrees(a, b, options).differences;
}

export function compareTrees(a: ImageTree, b: ImageTree, options: DiffOptions = {}): TreeComparison {
  const rules = (options.ignore ?? []).map(normaliseRule);
  const used = new Set<number>();
  const result: TreeComparison = { differences: [], ignored: [], unusedRules: [] };
  const report = (difference: TreeDifference): void => {
    const index = rules.findIndex((rule) => rule.covers(difference));
    if (index < 0) {
      result.differences.push(difference);
      return;
    }
    used.add(index);
    result.ignored.push({ difference, rule: options.ignore?.[index] ?? '' });
  };
  comparePlatform(a, b, report);
  compareConfig(a, b, report);
  compareHistory(a, b, report);
  compareEntries(a, b, options.compareMtimes === true, report);
  result.unusedRules = (options.ignore ?? []).filter((_, index) => !used.has(index));
  return result;
}

/** Differences as text, one per line (for assertion messages). */
export function formatDifferences(differences: readonly TreeDifference[]): string {
  return differences.map((difference) => difference.message).join('\n');
}

type Report = (difference: TreeDifference) => void;

function comparePlatform(a: ImageTree, b: ImageTree, report: Report): void {
  for (const field of ['architecture', 'os'] as const) {
    if (a[field] !== b[field]) {
      report({ kind: 'platform', where: 'platform', field, a: a[field], b: b[field], message: `platform ${field}: ${show(a[field])} (a) vs ${show(b[field])} (b)` });
    }
  }
}

const keyedFields: ReadonlySet<ConfigField> = new Set(['Env', 'ExposedPorts', 'Volumes', 'Labels']);

function compareConfig(a: ImageTree, b: ImageTree, report: Report): void {
  for (const field of configFields) {
    const left = normaliseConfigValue(field, a.config[field]);
    const right = normaliseConfigValue(field, b.config[field]);
    if (keyedFields.has(field) && isKeyed(left) && isKeyed(right)) {
      // Per key, so that one documented key (a builder's own label) can be ignored alone.
      const l = keyedEntries(field, left);
      const r = keyedEntries(field, right);
      let keyDifferences = 0;
      for (const key of [...new Set([...l.keys(), ...r.keys()])].sort()) {
        if (stableJson(l.get(key)) === stableJson(r.get(key))) continue;
        keyDifferences++;
        report({
          kind: 'config',
          where: `config.${field}`,
          field: key,
          a: l.get(key),
          b: r.get(key),
          message: `config.${field}[${key}]: ${show(l.get(key))} (a) vs ${show(r.get(key))} (b)`,
        });
      }
      // Same variables and values in another order: the order is what differs (later ones win in a shell).
      if (field === 'Env' && keyDifferences === 0 && stableJson(left) !== stableJson(right)) {
        report({ kind: 'config', where: 'config.Env', field: '(order)', a: left, b: right, message: `config.Env order: ${show(left)} (a) vs ${show(right)} (b)` });
      }
      continue;
    }
    if (stableJson(left) !== stableJson(right)) {
      report({ kind: 'config', where: `config.${field}`, field, a: left, b: right, message: `config.${field}: ${show(left)} (a) vs ${show(right)} (b)` });
    }
  }
}

/**
 * null and {} say the same as an absent field, and so does an empty Entrypoint or OnBuild list
 * (buildah's docker format writes `[]` for both). An empty Cmd stays a value: `CMD []` is one.
 */
function normaliseConfigValue(field: ConfigField, value: unknown): unknown {
  if (value === null || value === undefined) return undefined;
  if ((field === 'Entrypoint' || field === 'OnBuild') && Array.isArray(value) && value.length === 0) return undefined;
  if (typeof value === 'object' && !Array.isArray(value) && Object.keys(value).length === 0) return undefined;
  return value;
}

function isKeyed(value: unknown): boolean {
  return value === undefined || typeof value === 'object';
}

function keyedEntries(field: ConfigField, value: unknown): Map<string, unknown> {
  if (value === undefined) return new Map();
  if (field === 'Env' && Array.isArray(value)) {
    return new Map(
      (value as string[]).map((item) => {
        const cut = item.indexOf('=');
        return cut < 0 ? [item, undefined] : [item.slice(0, cut), item.slice(cut + 1)];
      }),
    );
  }
  return new Map(Object.entries(value as Record<string, unknown>));
}

function compareHistory(a: ImageTree, b: ImageTree, report: Report): void {
  if (a.history.length !== b.history.length) {
    report({
      kind: 'history',
      where: 'history',
      field: 'length',
      a: a.history.map((h) => h.created_by),
      b: b.history.map((h) => h.created_by),
      message: `history: ${a.history.length} entries (a) vs ${b.history.length} (b): ${show(a.history.map((h) => h.created_by))} vs ${show(b.history.map((h) => h.created_by))}`,
    });
    return;
  }
  a.history.forEach((left, index) => {
    const right = b.history[index];
    if (right === undefined) return;
    for (const field of ['created_by', 'empty_layer', 'comment'] as const) {
      if (left[field] === right[field]) continue;
      report({
        kind: 'history',
        where: `history[${index}]`,
        field,
        a: left[field],
        b: right[field],
        message: `history[${index}].${field}: ${show(left[field])} (a) vs ${show(right[field])} (b)`,
      });
    }
  });
}

const entryFields: readonly EntryField[] = ['type', 'mode', 'uid', 'gid', 'size', 'linkTarget', 'sha256', 'nlink', 'device'];

function compareEntries(a: ImageTree, b: ImageTree, compareMtimes: boolean, report: Report): void {
  const fields = compareMtimes ? [...entryFields, 'mtime' as const] : entryFields;
  const paths = [...new Set([...a.entries.keys(), ...b.entries.keys()])].sort();
  for (const entryPath of paths) {
    const left = a.entries.get(entryPath);
    const right = b.entries.get(entryPath);
    if (left === undefined || right === undefined) {
      const only = (left ?? right) as TreeEntry;
      report({
        kind: left === undefined ? 'only-in-b' : 'only-in-a',
        where: entryPath,
        field: 'path',
        a: left,
        b: right,
        message: `${entryPath}: only in ${left === undefined ? 'b' : 'a'} (${describeEntry(only)})`,
      });
      continue;
    }
    for (const field of fields) {
      if (left[field] === right[field]) continue;
      report({
        kind: 'entry',
        where: entryPath,
        field,
        a: left[field],
        b: right[field],
        message: `${entryPath}: ${field} ${showField(field, left[field])} (a) vs ${showField(field, right[field])} (b)`,
      });
    }
  }
}

function describeEntry(entry: TreeEntry): string {
  const target = entry.linkTarget !== undefined ? ` -> ${entry.linkTarget}` : '';
  return `${entry.type} ${octal(entry.mode)} ${entry.uid}:${entry.gid}${entry.type === 'file' ? ` ${entry.size} bytes` : ''}${target}`;
}

function showField(field: EntryField, value: unknown): string {
  if (field === 'mode' && typeof value === 'number') return octal(value);
  if (field === 'mtime' && typeof value === 'number') return new Date(value * 1000).toISOString();
  return show(value);
}

function octal(mode: number): string {
  return `0${mode.toString(8).padStart(3, '0')}`;
}

function show(value: unknown): string {
  return value === undefined ? '(absent)' : JSON.stringify(value);
}

/** JSON with object keys sorted, so that key order never counts as a difference. */
function stableJson(value: unknown): string {
  return JSON.stringify(value, (_, item: unknown) =>
    item !== null && typeof item === 'object' && !Array.isArray(item)
      ? Object.fromEntries(Object.entries(item as Record<string, unknown>).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0)))
      : item,
  ) ?? 'undefined';
}

interface CompiledRule {
  covers(difference: TreeDifference): boolean;
}

function normaliseRule(rule: IgnoreRule): CompiledRule {
  if (typeof rule === 'string') {
    if (rule.startsWith('/')) return normaliseRule({ path: rule });
    if (rule === 'history') return normaliseRule({ history: 'all' });
    if (rule === 'platform') return { covers: (d) => d.kind === 'platform' };
    const history = /^history\.(created_by|empty_layer|comment)$/.exec(rule);
    if (history) return normaliseRule({ history: history[1] as 'created_by' | 'empty_layer' | 'comment' });
    const config = /^config\.(\w+)$/.exec(rule);
    const field = config?.[1];
    if (field !== undefined && (configFields as readonly string[]).includes(field)) return normaliseRule({ config: field as ConfigField });
    throw new Error(`diffTrees: cannot read the ignore rule ${JSON.stringify(rule)} (a /path glob, config.FIELD, history[.FIELD] or platform)`);
  }
  if ('match' in rule) return { covers: rule.match };
  if ('path' in rule) {
    const matcher = typeof rule.path === 'string' ? globToRegExp(rule.path) : rule.path;
    const fields = rule.fields;
    return {
      covers: (d) =>
        (d.kind === 'entry' || d.kind === 'only-in-a' || d.kind === 'only-in-b') &&
        matcher.test(d.where) &&
        (fields === undefined || (d.kind === 'entry' && fields.includes(d.field as EntryField))),
    };
  }
  if ('config' in rule) {
    const keys = rule.keys;
    return {
      covers: (d) => d.kind === 'config' && d.where === `config.${rule.config}` && (keys === undefined || keys.includes(d.field)),
    };
  }
  return { covers: (d) => d.kind === 'history' && (rule.history === 'all' || d.field === rule.history) };
}

/** `*` within one name, `**` across names, `?` one character; `/dir/**` matches `/dir` too. */
export function globToRegExp(glob: string): RegExp {
  let source = '';
  for (let i = 0; i < glob.length; i++) {
    const char = glob[i] as string;
    if (char === '*' && glob[i + 1] === '*') {
      source += '.*';
      i++;
    } else if (char === '*') {
      source += '[^/]*';
    } else if (char === '?') {
      source += '[^/]';
    } else {
      source += char.replace(/[.+^${}()|[\]\\]/g, '\\$&');
    }
  }
  if (source.endsWith('/.*')) source = `${source.slice(0, -3)}(?:/.*)?`;
  return new RegExp(`^${source}$`);
}
