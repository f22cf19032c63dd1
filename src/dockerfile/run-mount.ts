/**
 * `RUN --mount` values: BuildKit's CSV syntax, keys, defaults and checks, parsed into typed mounts.
 */
import { InstructionError } from './instruction-error.js';

export type MountType = 'bind' | 'cache' | 'tmpfs' | 'secret' | 'ssh';
export type CacheSharing = 'shared' | 'private' | 'locked';

/**
 * One `RUN --mount`. Fields apply per type: bind (target, source, from, readonly), cache (id, target,
 * sharing, mode, uid, gid, from, source, readonly), tmpfs (target, size), secret (id, target, env,
 * required, mode, uid, gid), ssh (id, target, required, mode, uid, gid). Defaults Docker applies are
 * filled in: cache id = target, sharing = shared; secret id = basename of target, target =
 * /run/secrets/<id> unless only `env` was asked for; ssh id = default.
 */
export interface RunMount {
  type: MountType;
  target?: string;
  source?: string;
  from?: string;
  readonly: boolean;
  id?: string;
  sharing?: CacheSharing;
  mode?: number;
  uid?: number;
  gid?: number;
  required?: boolean;
  env?: string;
  /** tmpfs size in bytes. */
  size?: number;
}

/** Go encoding/csv for one record: commas separate fields, `"` quotes a field, `""` is a quote. */
function splitCsv(text: string): string[] {
  const fields: string[] = [];
  let i = 0;
  while (i <= text.length) {
    let field = '';
    if (text[i] === '"') {
      i++;
      for (;;) {
        if (i >= text.length) throw new InstructionError(`failed to parse csv mounts: extraneous or missing " in quoted-field: ${text}`);
        if (text[i] === '"') {
          if (text[i + 1] === '"') {
            field += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        field += text[i];
        i++;
      }
      if (i < text.length && text[i] !== ',') throw new InstructionError(`failed to parse csv mounts: extraneous or missing " in quoted-field: ${text}`);
    } else {
      const comma = text.indexOf(',', i);
      const end = comma < 0 ? text.length : comma;
      field = text.slice(i, end);
      if (field.includes('"')) throw new InstructionError(`failed to parse csv mounts: bare " in non-quoted-field: ${text}`);
      i = end;
    }
    fields.push(field);
    i++;
  }
  return fields;
}

/** The `from=` value of a `--mount` spec, if any (stage dependencies are found before expansion). */
export function mountFrom(spec: string): string | undefined {
  let from: string | undefined;
  for (const field of splitCsv(spec)) {
    const eq = field.indexOf('=');
    if (eq >= 0 && field.slice(0, eq).toLowerCase() === 'from') from = field.slice(eq + 1);
  }
  return from;
}

export function rejectVariableMountFrom(spec: string): void {
  for (const field of splitCsv(spec)) {
    const eq = field.indexOf('=');
    if (eq >= 0 && field.slice(0, eq).toLowerCase() === 'from' && /\$./.test(field.slice(eq + 1))) {
      throw new InstructionError("'from' doesn't support variable expansion, define alias stage instead");
    }
  }
}

const MOUNT_KEYS = ['type', 'from', 'source', 'src', 'target', 'dst', 'destination', 'readonly', 'ro', 'readwrite', 'rw', 'id', 'sharing', 'required', 'mode', 'uid', 'gid', 'size', 'env'];

function parseBool(key: string, value: string): boolean {
  const v = value.toLowerCase();
  if (['1', 't', 'true'].includes(v)) return true;
  if (['0', 'f', 'false'].includes(v)) return false;
  throw new InstructionError(`invalid value for ${key}: ${value}`);
}

function parseUnsigned(key: string, value: string, radix: 8 | 10): number {
  const ok = radix === 8 ? /^[0-7]+$/.test(value) : /^\d+$/.test(value);
  const n = ok ? Number.parseInt(value, radix) : NaN;
  if (!Number.isFinite(n) || n > 0xffffffff) throw new InstructionError(`invalid value ${value} for ${key}`);
  return n;
}

/** docker/go-units RAMInBytes: `64m`, `1g`, `512k`, plain bytes. */
function parseRamSize(value: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?b)?$/i.exec(value.trim());
  if (m === null) throw new InstructionError(`invalid value for size: ${value}`);
  const power = ['', 'k', 'm', 'g', 't', 'p'].indexOf((m[2] ?? '').toLowerCase());
  return Math.floor(Number(m[1]) * 1024 ** power);
}

/** Parses `--mount` values; `expandValue` substitutes variables in each `key=value` value, as BuildKit does. */
export function parseMounts(specs: readonly string[], expandValue?: (value: string) => string): RunMount[] {
  let sshIndex = 0;
  return specs.map((spec) => {
    const mount = parseMount(spec, sshIndex, expandValue);
    if (mount.type === 'ssh') sshIndex++;
    return mount;
  });
}

/** One `--mount` value, BuildKit's keys and checks. */
export function parseMount(spec: string, sshIndex = 0, expandValue?: (value: string) => string): RunMount {
  const m: RunMount = { type: 'bind', readonly: false };
  let readonlyExplicit = false;
  for (const field of splitCsv(spec)) {
    const eq = field.indexOf('=');
    const key = (eq < 0 ? field : field.slice(0, eq)).toLowerCase();
    const rawValue = eq < 0 ? undefined : field.slice(eq + 1);
    const value = rawValue === undefined || expandValue === undefined || key === 'from' ? rawValue : expandValue(rawValue);
    if (value === undefined) {
      if (key === 'readonly' || key === 'ro') {
        m.readonly = true;
        readonlyExplicit = true;
      } else if (key === 'readwrite' || key === 'rw') {
        m.readonly = false;
        readonlyExplicit = true;
      } else if (key === 'required') {
        if (m.type !== 'secret' && m.type !== 'ssh') throw new InstructionError(`unexpected key '${key}' for mount type '${m.type}'`);
        m.required = true;
      } else {
        throw new InstructionError(`invalid field '${field}' must be a key=value pair`);
      }
      continue;
    }
    switch (key) {
      case 'type': {
        const t = value.toLowerCase();
        if (t !== 'bind' && t !== 'cache' && t !== 'tmpfs' && t !== 'secret' && t !== 'ssh') {
          throw new InstructionError(`unsupported mount type "${value}" (expected bind, cache, tmpfs, secret or ssh)`);
        }
        m.type = t;
        break;
      }
      case 'from':
        m.from = value;
        break;
      case 'source':
      case 'src':
        m.source = value;
        break;
      case 'target':
      case 'dst':
      case 'destination':
        m.target = value;
        break;
      case 'readonly':
      case 'ro':
        m.readonly = parseBool(key, value);
        readonlyExplicit = true;
        break;
      case 'readwrite':
      case 'rw':
        m.readonly = !parseBool(key, value);
        readonlyExplicit = true;
        break;
      case 'required':
        if (m.type !== 'secret' && m.type !== 'ssh') throw new InstructionError(`unexpected key '${key}' for mount type '${m.type}'`);
        m.required = parseBool(key, value);
        break;
      case 'size':
        if (m.type !== 'tmpfs') throw new InstructionError(`unexpected key '${key}' for mount type '${m.type}'`);
        m.size = parseRamSize(value);
        break;
      case 'id':
        m.id = value;
        break;
      case 'sharing': {
        const s = value.toLowerCase();
        if (s !== 'shared' && s !== 'private' && s !== 'locked') throw new InstructionError(`unsupported sharing value "${value}" (expected shared, private or locked)`);
        m.sharing = s;
        break;
      }
      case 'mode':
        m.mode = parseUnsigned('mode', value, 8);
        break;
      case 'uid':
        m.uid = parseUnsigned('uid', value, 10);
        break;
      case 'gid':
        m.gid = parseUnsigned('gid', value, 10);
        break;
      case 'env':
        if (m.type !== 'secret') throw new InstructionError(`unexpected key '${key}' for mount type '${m.type}'`);
        m.env = value;
        break;
      default:
        throw new InstructionError(`unexpected key '${key}' in '${field}' (expected one of: ${MOUNT_KEYS.join(', ')})`);
    }
  }
  return validateMount(m, readonlyExplicit, sshIndex);
}

function validateMount(m: RunMount, readonlyExplicit: boolean, sshIndex: number): RunMount {
  const fileInfoAllowed = m.type === 'secret' || m.type === 'ssh' || m.type === 'cache';
  if (!fileInfoAllowed) {
    if (m.mode !== undefined) throw new InstructionError(`mode not allowed for "${m.type}" type mounts`);
    if (m.uid !== undefined) throw new InstructionError(`uid not allowed for "${m.type}" type mounts`);
    if (m.gid !== undefined) throw new InstructionError(`gid not allowed for "${m.type}" type mounts`);
  }
  if (!readonlyExplicit) m.readonly = !(m.type === 'cache' || m.type === 'tmpfs');
  if (m.sharing !== undefined && m.type !== 'cache') throw new InstructionError(`invalid cache sharing set for ${m.type} mount`);
  switch (m.type) {
    case 'secret': {
      if (m.from !== undefined) throw new InstructionError('secret mount should not have a from');
      if (m.source !== undefined && m.id !== undefined) throw new InstructionError("both source and id can't be set");
      // Older Dockerfiles name the secret with `source`; it is the same as `id`.
      if (m.source !== undefined) {
        m.id = m.source;
        delete m.source;
      }
      if (m.id === undefined && m.target === undefined) throw new InstructionError('invalid secret mount. one of source, target required');
      m.id ??= baseName(m.target ?? '');
      if (m.target === undefined && m.env === undefined) m.target = `/run/secrets/${m.id}`;
      m.required ??= false;
      break;
    }
    case 'ssh':
      m.id ??= 'default';
      m.target ??= `/run/buildkit/ssh_agent.${sshIndex}`;
      m.required ??= false;
      break;
    case 'cache':
      if (m.target === undefined || m.target === '') throw new InstructionError('mount type=cache requires a target (target=/path)');
      m.sharing ??= 'shared';
      m.id ??= m.target;
      break;
    case 'bind':
    case 'tmpfs':
      if (m.target === undefined || m.target === '') throw new InstructionError(`mount type=${m.type} requires a target (target=/path)`);
      break;
  }
  return m;
}

function baseName(path: string): string {
  const trimmed = path.replace(/\/+$/, '');
  return trimmed.slice(trimmed.lastIndexOf('/') + 1);
}

