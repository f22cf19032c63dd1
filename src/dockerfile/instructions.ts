/**
 * Instructions as typed values: the parser's `InstructionNode` (keyword, flags, argument chain) checked
 * and turned into one interface per Dockerfile instruction. Strings that Docker expands are kept as
 * written here; expand.ts substitutes variables and re-derives the typed parts (mounts, ports, modes)
 * from the expanded text. Wording of errors follows BuildKit's frontend where it has one.
 */
import { DockerfileSyntaxError, type InstructionNode, type SourceRange } from './ast.js';
import { FlagError, parseFlags, type FlagSpec, type FlagValues } from './flags.js';
import { nodeText } from './format.js';
import { chompHeredocContent } from './heredoc.js';
import { InstructionError } from './instruction-error.js';
import { parseFileMode, parseGoDuration, parsePortSpec, validateChecksum, validateSignal } from './instruction-values.js';
import { parseMounts, rejectVariableMountFrom, type RunMount } from './run-mount.js';

export { InstructionError } from './instruction-error.js';
export { formatInstruction, nodeText } from './format.js';
export { exposedPortKeys, isGitSource, parseFileMode, parseGoDuration, parsePortSpec, validateChecksum, validateSignal } from './instruction-values.js';
export { mountFrom, parseMount, parseMounts, type CacheSharing, type MountType, type RunMount } from './run-mount.js';

interface InstructionBase {
  /** The keyword as written (`copy`, `COPY`), for messages and casing checks. */
  keyword: string;
  location: SourceRange;
}

/** A command in exec form (`["a","b"]`) or shell form (one string handed to the SHELL). */
export type CommandLine = { form: 'exec'; args: string[] } | { form: 'shell'; command: string };

/** A heredoc body attached to RUN (a script or extra fd input). */
export interface InlineFile {
  name: string;
  content: string;
  /** `<<-`: strip leading tabs of every line before use. */
  chomp: boolean;
  /** False when the delimiter was quoted: the body is taken literally. */
  expand: boolean;
  fileDescriptor: number;
}

export interface FromInstruction extends InstructionBase {
  kind: 'from';
  image: string;
  /** Lower-cased stage name after `AS`. */
  stageName?: string;
  /** The name as written (for StageNameCasing). */
  stageNameAsWritten?: string;
  /** The `AS` keyword as written (for FromAsCasing). */
  asKeyword?: string;
  platform?: string;
}

export type NetworkMode = 'default' | 'none' | 'host';
export type SecurityMode = 'insecure' | 'sandbox';

export interface RunInstruction extends InstructionBase {
  kind: 'run';
  cmd: CommandLine;
  heredocs: InlineFile[];
  /** `--mount` values as written; expanded at build time like other words. */
  mountSpecs: string[];
  /** Parsed mounts; absent while a spec still holds a variable. */
  mounts?: RunMount[];
  network?: NetworkMode;
  security?: SecurityMode;
}

export interface CmdInstruction extends InstructionBase {
  kind: 'cmd';
  cmd: CommandLine;
}

export interface EntrypointInstruction extends InstructionBase {
  kind: 'entrypoint';
  /** `ENTRYPOINT []` (exec form, empty) clears the entrypoint. */
  cmd: CommandLine;
}

export interface ShellInstruction extends InstructionBase {
  kind: 'shell';
  shell: string[];
}

export interface KeyValue {
  key: string;
  value: string;
  /** Written as `KEY value` (no `=`), the legacy form. */
  legacy: boolean;
}

export interface LabelInstruction extends InstructionBase {
  kind: 'label';
  labels: KeyValue[];
}

export interface MaintainerInstruction extends InstructionBase {
  kind: 'maintainer';
  maintainer: string;
}

export type PortProtocol = 'tcp' | 'udp' | 'sctp';

export interface PortSpec {
  start: number;
  end: number;
  protocol: PortProtocol;
  /** `ip:host:container` forms: the part Docker ignores (it only exposes the container port). */
  ignoredHostPart?: string;
  /** The protocol as written, when its casing differed (ExposeProtoCasing). */
  protocolAsWritten?: string;
}

export interface ExposeInstruction extends InstructionBase {
  kind: 'expose';
  /** As written; expansion may split one word into several. */
  words: string[];
  /** Parsed ports; absent while a word still holds a variable. */
  ports?: PortSpec[];
}

export interface EnvInstruction extends InstructionBase {
  kind: 'env';
  pairs: KeyValue[];
}

export type FileModeSpec = { kind: 'octal'; mode: number } | { kind: 'symbolic'; expression: string };

/** A heredoc used as a COPY/ADD source: a file named after the delimiter with this content. */
export interface HeredocSource {
  name: string;
  content: string;
  expand: boolean;
}

interface CopyLike extends InstructionBase {
  sources: string[];
  heredocSources: HeredocSource[];
  destination: string;
  chown?: string;
  /** As written; see `mode` for the parsed value. */
  chmod?: string;
  mode?: FileModeSpec;
  link: boolean;
  excludes: string[];
  /** Arguments were a JSON array. */
  json: boolean;
}

export interface CopyInstruction extends CopyLike {
  kind: 'copy';
  /**
   * `--from`: a stage name, a stage index or an image reference. Expanded with the global ARGs only
   * (like FROM), because stage dependencies are known before any stage runs.
   */
  from?: string;
  parents: boolean;
}

export interface AddInstruction extends CopyLike {
  kind: 'add';
  checksum?: string;
  keepGitDir: boolean;
  /** `--unpack`: undefined means Docker's default (unpack local archives, not remote ones). */
  unpack?: boolean;
}

export interface VolumeInstruction extends InstructionBase {
  kind: 'volume';
  volumes: string[];
}

export interface UserInstruction extends InstructionBase {
  kind: 'user';
  user: string;
}

export interface WorkdirInstruction extends InstructionBase {
  kind: 'workdir';
  path: string;
}

export interface ArgDeclaration {
  key: string;
  /** The default as written (expanded when the ARG is reached); absent for a bare `ARG NAME`. */
  defaultValue?: string;
}

export interface ArgInstruction extends InstructionBase {
  kind: 'arg';
  args: ArgDeclaration[];
}

export interface OnbuildInstruction extends InstructionBase {
  kind: 'onbuild';
  /** The trigger as text, as it goes into the image config's OnBuild list. */
  expression: string;
  trigger: Instruction;
}

export interface StopSignalInstruction extends InstructionBase {
  kind: 'stopsignal';
  signal: string;
}

/** Durations in nanoseconds, as the image config stores them. */
export interface HealthcheckInstruction extends InstructionBase {
  kind: 'healthcheck';
  /** `['NONE']`, `['CMD', ...args]` or `['CMD-SHELL', command]`. */
  test: string[];
  interval?: number;
  timeout?: number;
  startPeriod?: number;
  startInterval?: number;
  retries?: number;
}

export type Instruction =
  | FromInstruction
  | RunInstruction
  | CmdInstruction
  | EntrypointInstruction
  | ShellInstruction
  | LabelInstruction
  | MaintainerInstruction
  | ExposeInstruction
  | EnvInstruction
  | AddInstruction
  | CopyInstruction
  | VolumeInstruction
  | UserInstruction
  | WorkdirInstruction
  | ArgInstruction
  | OnbuildInstruction
  | StopSignalInstruction
  | HealthcheckInstruction;

export type InstructionKind = Instruction['kind'];

export const INSTRUCTION_KEYWORDS: readonly InstructionKind[] = [
  'from', 'run', 'cmd', 'entrypoint', 'shell', 'label', 'maintainer', 'expose', 'env', 'add', 'copy',
  'volume', 'user', 'workdir', 'arg', 'onbuild', 'stopsignal', 'healthcheck',
];

/** Type one parsed instruction. Throws `DockerfileSyntaxError` located at the instruction. */
export function parseInstruction(node: InstructionNode, file = 'Dockerfile'): Instruction {
  try {
    return typeNode(node);
  } catch (err) {
    if (err instanceof InstructionError || err instanceof FlagError) {
      throw new DockerfileSyntaxError(file, node.range.startLine, err.message);
    }
    throw err;
  }
}

function typeNode(node: InstructionNode): Instruction {
  const base: InstructionBase = { keyword: node.original, location: { ...node.range } };
  const args = node.args;
  switch (node.keyword) {
    case 'from': {
      const flags = flagsOf(node, { platform: 'string' });
      if (args.length === 3 && args[1]?.toLowerCase() === 'as') {
        const written = args[2] ?? '';
        const stageName = written.toLowerCase();
        if (!/^[a-z][a-z0-9-_.]*$/.test(stageName)) {
          throw new InstructionError(
            `invalid name for build stage: "${written}", name can't start with a number or contain symbols`,
          );
        }
        return { ...base, kind: 'from', image: args[0] ?? '', stageName, stageNameAsWritten: written, asKeyword: args[1], ...opt('platform', flags.platform) };
      }
      if (args.length !== 1) throw new InstructionError('FROM requires either one or three arguments');
      return { ...base, kind: 'from', image: args[0] ?? '', ...opt('platform', flags.platform) };
    }
    case 'run': {
      const flags = flagsOf(node, { mount: 'strings', network: 'string', security: 'string' });
      const run: RunInstruction = {
        ...base,
        kind: 'run',
        cmd: commandLine(node),
        heredocs: node.heredocs.map((h) => ({ name: h.name, content: h.content, chomp: h.chomp, expand: h.expand, fileDescriptor: h.fileDescriptor })),
        mountSpecs: flags.mount,
      };
      if (flags.network !== undefined) run.network = parseNetwork(flags.network);
      if (flags.security !== undefined) run.security = parseSecurity(flags.security);
      if (flags.mount.some((spec) => /\$./.test(spec))) {
        // BuildKit resolves stage dependencies before expanding, so `from=` cannot hold a variable.
        for (const spec of flags.mount) rejectVariableMountFrom(spec);
      } else {
        run.mounts = parseMounts(flags.mount);
      }
      return run;
    }
    case 'cmd':
      flagsOf(node, {});
      return { ...base, kind: 'cmd', cmd: commandLine(node) };
    case 'entrypoint':
      flagsOf(node, {});
      return { ...base, kind: 'entrypoint', cmd: commandLine(node) };
    case 'shell': {
      flagsOf(node, {});
      if (!node.json) {
        if (args.length === 0 || (args.length === 1 && args[0] === '')) throw new InstructionError('SHELL requires at least one argument');
        throw new InstructionError('SHELL requires the arguments to be in JSON form');
      }
      if (args.length === 0) throw new InstructionError('SHELL requires at least one argument');
      return { ...base, kind: 'shell', shell: [...args] };
    }
    case 'label':
      flagsOf(node, {});
      return { ...base, kind: 'label', labels: keyValues(args, 'LABEL') };
    case 'env':
      flagsOf(node, {});
      return { ...base, kind: 'env', pairs: keyValues(args, 'ENV') };
    case 'maintainer':
      flagsOf(node, {});
      return { ...base, kind: 'maintainer', maintainer: exactlyOne(args, 'MAINTAINER') };
    case 'expose': {
      flagsOf(node, {});
      if (args.length === 0) throw new InstructionError('EXPOSE requires at least one argument');
      const expose: ExposeInstruction = { ...base, kind: 'expose', words: [...args] };
      if (!args.some(hasVariable)) expose.ports = args.map(parsePortSpec);
      return expose;
    }
    case 'copy': {
      if (args.length < 2) throw new InstructionError(noDestination('COPY'));
      const flags = flagsOf(node, { from: 'string', chown: 'string', chmod: 'string', link: 'bool', parents: 'bool', exclude: 'strings' });
      const copy: CopyInstruction = {
        ...base,
        kind: 'copy',
        ...sourcesAndDestination(node, 'COPY'),
        link: flags.link,
        parents: flags.parents,
        excludes: flags.exclude,
        json: node.json,
        ...opt('from', flags.from),
        ...opt('chown', flags.chown),
        ...opt('chmod', flags.chmod),
      };
      if (copy.from !== undefined) {
        if (copy.from === '') throw new InstructionError('COPY --from requires a stage name, a stage index or an image');
      }
      if (copy.chmod !== undefined && !hasVariable(copy.chmod)) copy.mode = parseFileMode(copy.chmod);
      return copy;
    }
    case 'add': {
      if (args.length < 2) throw new InstructionError(noDestination('ADD'));
      const flags = flagsOf(node, {
        chown: 'string', chmod: 'string', link: 'bool', 'keep-git-dir': 'bool', checksum: 'string', exclude: 'strings', unpack: 'bool',
      });
      const add: AddInstruction = {
        ...base,
        kind: 'add',
        ...sourcesAndDestination(node, 'ADD'),
        link: flags.link,
        keepGitDir: flags['keep-git-dir'],
        excludes: flags.exclude,
        json: node.json,
        ...opt('chown', flags.chown),
        ...opt('chmod', flags.chmod),
        ...opt('checksum', flags.checksum),
      };
      if (node.flags.some((f) => f === '--unpack' || f.startsWith('--unpack='))) add.unpack = flags.unpack;
      if (add.chmod !== undefined && !hasVariable(add.chmod)) add.mode = parseFileMode(add.chmod);
      if (add.checksum !== undefined && !hasVariable(add.checksum)) validateChecksum(add);
      return add;
    }
    case 'volume': {
      flagsOf(node, {});
      if (args.length === 0) throw new InstructionError('VOLUME requires at least one argument');
      const volumes = args.map((v) => v.trim());
      if (volumes.some((v) => v === '')) throw new InstructionError('VOLUME specified can not be an empty string');
      return { ...base, kind: 'volume', volumes };
    }
    case 'user':
      flagsOf(node, {});
      return { ...base, kind: 'user', user: exactlyOne(args, 'USER') };
    case 'workdir':
      flagsOf(node, {});
      return { ...base, kind: 'workdir', path: exactlyOne(args, 'WORKDIR') };
    case 'arg': {
      flagsOf(node, {});
      if (args.length === 0) throw new InstructionError('ARG requires at least one argument');
      return {
        ...base,
        kind: 'arg',
        args: args.map((word) => {
          const eq = word.indexOf('=');
          if (eq < 0) return { key: word };
          if (eq === 0) throw new InstructionError('ARG names can not be blank');
          return { key: word.slice(0, eq), defaultValue: word.slice(eq + 1) };
        }),
      };
    }
    case 'onbuild': {
      flagsOf(node, {});
      const next = node.next;
      if (next === undefined) throw new InstructionError('ONBUILD requires at least one argument');
      const triggerName = next.keyword.toUpperCase();
      if (triggerName === 'ONBUILD') throw new InstructionError('Chaining ONBUILD via `ONBUILD ONBUILD` isn\'t allowed');
      if (triggerName === 'MAINTAINER' || triggerName === 'FROM') throw new InstructionError(`${triggerName} isn't allowed as an ONBUILD trigger`);
      return { ...base, kind: 'onbuild', expression: nodeText(next), trigger: typeNode(next) };
    }
    case 'stopsignal': {
      flagsOf(node, {});
      const signal = exactlyOne(args, 'STOPSIGNAL');
      if (!hasVariable(signal)) validateSignal(signal);
      return { ...base, kind: 'stopsignal', signal };
    }
    case 'healthcheck':
      return healthcheck(node, base);
    default:
      throw new InstructionError(unknownInstruction(node.original));
  }
}

function unknownInstruction(word: string): string {
  const upper = word.toUpperCase();
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const k of INSTRUCTION_KEYWORDS) {
    const d = editDistance(upper, k.toUpperCase());
    if (d < bestDistance) {
      bestDistance = d;
      best = k.toUpperCase();
    }
  }
  const hint = best !== undefined && bestDistance <= 2 ? ` (did you mean ${best}?)` : '';
  return `unknown instruction: ${word}${hint}`;
}

/** Levenshtein distance, for "did you mean" hints. */
export function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      cur[j] = Math.min((prev[j] ?? 0) + 1, (cur[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + cost);
    }
    prev = cur;
  }
  return prev[b.length] ?? 0;
}

function opt<K extends string, V>(key: K, value: V | undefined): Partial<Record<K, V>> {
  return value === undefined ? {} : ({ [key]: value } as Partial<Record<K, V>>);
}

function flagsOf<S extends FlagSpec>(node: InstructionNode, spec: S): FlagValues<S> {
  return parseFlags(node.flags, spec);
}

export function hasVariable(word: string): boolean {
  return word.includes('$');
}

function exactlyOne(args: readonly string[], name: string): string {
  if (args.length !== 1) throw new InstructionError(`${name} requires exactly one argument`);
  return args[0] ?? '';
}

function noDestination(name: string): string {
  return `${name} requires at least two arguments, but only one was provided. Destination could not be determined`;
}

function commandLine(node: InstructionNode): CommandLine {
  if (node.json) return { form: 'exec', args: [...node.args] };
  return { form: 'shell', command: node.args.join(' ') };
}

/** ENV/LABEL arguments: the parser's `key value sep` triples (sep `=` or `` for the legacy form). */
function keyValues(args: readonly string[], name: string): KeyValue[] {
  if (args.length === 0) throw new InstructionError(`${name} requires at least one argument`);
  if (args.length % 3 !== 0) throw new InstructionError(`Bad input to ${name}, too many arguments`);
  const pairs: KeyValue[] = [];
  for (let i = 0; i < args.length; i += 3) {
    const key = args[i] ?? '';
    if (key === '') throw new InstructionError(`${name} names can not be blank`);
    pairs.push({ key, value: args[i + 1] ?? '', legacy: args[i + 2] !== '=' });
  }
  return pairs;
}

const HEREDOC_WORD = /^(\d*)<<(-?)\s*([^<]*)$/;

function heredocName(word: string): string | undefined {
  const m = HEREDOC_WORD.exec(word);
  if (m === null) return undefined;
  const raw = m[3] ?? '';
  const name = raw.replace(/^(["'])(.*)\1$/, '$2').replace(/["']/g, '');
  return name === '' ? undefined : name;
}

function sourcesAndDestination(node: InstructionNode, name: string): { sources: string[]; heredocSources: HeredocSource[]; destination: string } {
  const destination = node.args[node.args.length - 1] ?? '';
  const byName = new Map(node.heredocs.map((h) => [h.name, h]));
  if (!node.json && heredocName(destination) !== undefined && node.heredocs.length > 0) {
    throw new InstructionError(`${name} cannot accept a heredoc as a destination`);
  }
  const sources: string[] = [];
  const heredocSources: HeredocSource[] = [];
  for (const src of node.args.slice(0, -1)) {
    const hd = node.json ? undefined : heredocName(src);
    const doc = hd === undefined ? undefined : byName.get(hd);
    if (doc === undefined) {
      sources.push(src);
      continue;
    }
    heredocSources.push({ name: doc.name, content: doc.chomp ? chompHeredocContent(doc.content) : doc.content, expand: doc.expand });
  }
  return { sources, heredocSources, destination };
}

function healthcheck(node: InstructionNode, base: InstructionBase): HealthcheckInstruction {
  const args = node.args;
  if (args.length === 0) throw new InstructionError('HEALTHCHECK requires at least one argument');
  const type = (args[0] ?? '').toUpperCase();
  const rest = args.slice(1);
  if (type === 'NONE') {
    if (rest.length !== 0 && !(rest.length === 1 && rest[0] === '')) throw new InstructionError('HEALTHCHECK NONE takes no arguments');
    return { ...base, kind: 'healthcheck', test: ['NONE'] };
  }
  const flags = flagsOf(node, { interval: 'string', timeout: 'string', 'start-period': 'string', 'start-interval': 'string', retries: 'string' });
  if (type !== 'CMD') throw new InstructionError(`Unknown type "${args[0] ?? ''}" in HEALTHCHECK (try CMD)`);
  const cmd = node.json ? rest : rest.length === 0 || (rest.length === 1 && rest[0] === '') ? [] : [rest.join(' ')];
  if (cmd.length === 0) throw new InstructionError('Missing command after HEALTHCHECK CMD');
  const hc: HealthcheckInstruction = { ...base, kind: 'healthcheck', test: [node.json ? 'CMD' : 'CMD-SHELL', ...cmd] };
  const durations = [
    ['interval', flags.interval],
    ['timeout', flags.timeout],
    ['start-period', flags['start-period']],
    ['start-interval', flags['start-interval']],
  ] as const;
  for (const [flag, value] of durations) {
    if (value === undefined || value === '') continue;
    const ns = parseGoDuration(value);
    if (ns === 0) continue;
    if (ns < 1_000_000) throw new InstructionError(`Interval "${flag}" cannot be less than 1ms`);
    if (flag === 'interval') hc.interval = ns;
    else if (flag === 'timeout') hc.timeout = ns;
    else if (flag === 'start-period') hc.startPeriod = ns;
    else hc.startInterval = ns;
  }
  if (flags.retries !== undefined && flags.retries !== '') {
    if (!/^[+-]?\d+$/.test(flags.retries)) throw new InstructionError(`strconv.ParseInt: parsing "${flags.retries}": invalid syntax (--retries expects an integer)`);
    const retries = Number.parseInt(flags.retries, 10);
    if (retries < 0) throw new InstructionError(`--retries cannot be negative (${retries})`);
    if (retries > 2147483647) throw new InstructionError(`strconv.ParseInt: parsing "${flags.retries}": value out of range`);
    hc.retries = retries;
  }
  return hc;
}

function parseNetwork(value: string): NetworkMode {
  if (value === 'default' || value === 'none' || value === 'host') return value;
  throw new InstructionError(`unsupported network mode "${value}" (expected default, none or host)`);
}

function parseSecurity(value: string): SecurityMode {
  if (value === 'insecure' || value === 'sandbox') return value;
  throw new InstructionError(`unsupported security mode "${value}" (expected insecure or sandbox)`);
}

