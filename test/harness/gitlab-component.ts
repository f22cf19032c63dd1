/**
 * A GitLab CI/CD component file read and rendered the way GitLab does it, for tests: the `spec:`
 * header document, inputs checked against it (type, options, unknown names) with defaults applied,
 * then `$[[ inputs.NAME ]]` interpolated into the job document's keys and values. As GitLab does
 * (merge request 144065), a value that is nothing but one interpolation keeps the input's type;
 * anywhere else the input is written into the string. Job variables are then expanded the way the
 * runner does (`$VAR` and `${VAR}` from the CI variables; unknown ones become empty).
 */
import { readFile } from 'node:fs/promises';
import { parseAllDocuments } from 'yaml';

export type InputType = 'string' | 'boolean' | 'number' | 'array';
export type InputValue = string | boolean | number | unknown[];

export interface InputSpec {
  type: InputType;
  default?: InputValue;
  description?: string;
  options?: InputValue[];
}

export interface ComponentFile {
  inputs: Record<string, InputSpec>;
  /** The job document as parsed, before interpolation. */
  config: unknown;
  /** Every `inputs.NAME` the job document mentions. */
  usedInputs: Set<string>;
}

export interface GitLabJob {
  stage?: string;
  image?: { name: string; entrypoint?: string[] };
  variables?: Record<string, unknown>;
  script: string[];
  artifacts?: { reports?: { dotenv?: string } };
}

const interpolation = /\$\[\[\s*inputs\.([A-Za-z0-9_-]+)\s*\]\]/g;
const wholeInterpolation = /^\$\[\[\s*inputs\.([A-Za-z0-9_-]+)\s*\]\]$/;
const inputTypes: readonly string[] = ['string', 'boolean', 'number', 'array'];

export class ComponentError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ComponentError';
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function typeOf(value: unknown): InputType | undefined {
  if (typeof value === 'string') return 'string';
  if (typeof value === 'boolean') return 'boolean';
  if (typeof value === 'number') return 'number';
  if (Array.isArray(value)) return 'array';
  return undefined;
}

function collectUsed(node: unknown, into: Set<string>): void {
  if (typeof node === 'string') {
    for (const match of node.matchAll(interpolation)) into.add(match[1] ?? '');
  } else if (Array.isArray(node)) {
    for (const item of node) collectUsed(item, into);
  } else if (isRecord(node)) {
    for (const [key, value] of Object.entries(node)) {
      collectUsed(key, into);
      collectUsed(value, into);
    }
  }
}

/** Parses the two documents and checks the header as GitLab's `spec:` schema does. */
export function parseComponent(text: string): ComponentFile {
  const documents = parseAllDocuments(text);
  if (!Array.isArray(documents) || documents.length !== 2) throw new ComponentError('expected a spec header document and a job document');
  for (const document of documents) {
    if (document.errors.length > 0) throw new ComponentError(`YAML: ${document.errors.map((e) => e.message).join('; ')}`);
  }
  const header: unknown = documents[0]?.toJS();
  if (!isRecord(header) || Object.keys(header).join() !== 'spec' || !isRecord(header.spec)) {
    throw new ComponentError('the header must hold `spec:` alone');
  }
  const rawInputs = header.spec.inputs;
  if (!isRecord(rawInputs)) throw new ComponentError('spec.inputs must be a mapping');
  const inputs: Record<string, InputSpec> = {};
  for (const [name, raw] of Object.entries(rawInputs)) {
    if (!isRecord(raw)) throw new ComponentError(`input ${name}: must be a mapping`);
    const unknownKeys = Object.keys(raw).filter((key) => !['type', 'default', 'description', 'options', 'regex'].includes(key));
    if (unknownKeys.length > 0) throw new ComponentError(`input ${name}: unknown keys ${unknownKeys.join(', ')}`);
    const type = raw.type ?? 'string';
    if (typeof type !== 'string' || !inputTypes.includes(type)) throw new ComponentError(`input ${name}: unknown type ${String(type)}`);
    const spec: InputSpec = { type: type as InputType };
    if (raw.description !== undefined) spec.description = String(raw.description);
    if (raw.default !== undefined) {
      if (typeOf(raw.default) !== type) throw new ComponentError(`input ${name}: default ${JSON.stringify(raw.default)} is not a ${type}`);
      spec.default = raw.default as InputValue;
    }
    if (raw.options !== undefined) {
      if (!Array.isArray(raw.options) || raw.options.some((option) => typeOf(option) !== type)) {
        throw new ComponentError(`input ${name}: options must be a list of ${type} values`);
      }
      spec.options = raw.options as InputValue[];
      if (spec.default !== undefined && !spec.options.includes(spec.default)) throw new ComponentError(`input ${name}: default is not one of the options`);
    }
    inputs[name] = spec;
  }
  const config: unknown = documents[1]?.toJS();
  const usedInputs = new Set<string>();
  collectUsed(config, usedInputs);
  return { inputs, config, usedInputs };
}

export async function readComponent(path: string): Promise<ComponentFile> {
  return parseComponent(await readFile(path, 'utf8'));
}

/** The values GitLab would interpolate: given ones checked, defaults for the rest. */
export function resolveInputs(component: ComponentFile, given: Readonly<Record<string, InputValue>>): Record<string, InputValue> {
  const values: Record<string, InputValue> = {};
  for (const name of Object.keys(given)) {
    if (component.inputs[name] === undefined) throw new ComponentError(`unknown input ${name}`);
  }
  for (const [name, spec] of Object.entries(component.inputs)) {
    const value = given[name] ?? spec.default;
    if (value === undefined) throw new ComponentError(`input ${name} is required`);
    if (typeOf(value) !== spec.type) throw new ComponentError(`input ${name}: ${JSON.stringify(value)} is not a ${spec.type}`);
    if (spec.options !== undefined && !spec.options.includes(value)) throw new ComponentError(`input ${name}: ${String(value)} is not an option`);
    values[name] = value;
  }
  return values;
}

function interpolate(node: unknown, values: Readonly<Record<string, InputValue>>): unknown {
  if (typeof node === 'string') {
    const whole = wholeInterpolation.exec(node);
    if (whole) return lookup(values, whole[1] ?? '');
    return node.replace(interpolation, (_text, name: string) => {
      const value = lookup(values, name);
      return Array.isArray(value) ? JSON.stringify(value) : String(value);
    });
  }
  if (Array.isArray(node)) return node.map((item) => interpolate(item, values));
  if (isRecord(node)) {
    return Object.fromEntries(Object.entries(node).map(([key, value]) => [String(interpolate(key, values)), interpolate(value, values)]));
  }
  return node;
}

function lookup(values: Readonly<Record<string, InputValue>>, name: string): InputValue {
  const value = values[name];
  if (value === undefined) throw new ComponentError(`unknown interpolation key inputs.${name}`);
  return value;
}

/** The job document with the inputs interpolated. */
export function renderComponent(component: ComponentFile, given: Readonly<Record<string, InputValue>> = {}): Record<string, GitLabJob> {
  const rendered = interpolate(component.config, resolveInputs(component, given));
  if (!isRecord(rendered)) throw new ComponentError('the job document must be a mapping');
  return rendered as Record<string, GitLabJob>;
}

/** `$VAR` and `${VAR}` as the runner expands job variables; `$$` is a literal dollar. */
export function expandVariables(text: string, variables: Readonly<Record<string, string | undefined>>): string {
  return text.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (match, braced?: string, bare?: string) => {
    if (match === '$$') return '$';
    return variables[braced ?? bare ?? ''] ?? '';
  });
}

/** The job's environment: the CI variables, then the job's own variables expanded against them. */
export function jobEnvironment(job: GitLabJob, ciVariables: Readonly<Record<string, string>>): Record<string, string> {
  const env: Record<string, string> = { ...ciVariables };
  for (const [name, value] of Object.entries(job.variables ?? {})) {
    if (typeof value !== 'string') throw new ComponentError(`variable ${name}: GitLab wants a string, got ${JSON.stringify(value)}`);
    env[name] = expandVariables(value, env);
  }
  return env;
}
