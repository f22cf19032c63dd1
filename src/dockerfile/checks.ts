/**
 * Build checks in the manner of BuildKit's (`docker build --check`): warnings about legacy or risky
 * forms, each with its rule name, message and line, and the `# check=skip=...;error=true` directive.
 * Rule names and messages follow BuildKit's so users can look them up in Docker's documentation.
 */
import { DockerfileSyntaxError } from './ast.js';
import { editDistance, type Instruction } from './instructions.js';

export interface BuildCheckWarning {
  rule: string;
  message: string;
  /** 1-based line of the instruction; 0 for warnings about the whole build (unused build args). */
  line: number;
  url?: string;
}

export interface CheckConfig {
  skipAll: boolean;
  skip: string[];
  /** `error=true`: any remaining warning fails the build. */
  error: boolean;
}

const DOCS = 'https://docs.docker.com/go/dockerfile/rule/';

function ruleUrl(rule: string): string {
  return DOCS + rule.replace(/([a-z0-9])([A-Z])/g, '$1-$2').replace(/([A-Z]+)([A-Z][a-z])/g, '$1-$2').toLowerCase() + '/';
}

export function warning(rule: string, message: string, line: number): BuildCheckWarning {
  return { rule, message, line, url: ruleUrl(rule) };
}

/** `# check=skip=JSONArgsRecommended,StageNameCasing;error=true` (also `skip=all`). */
export function parseCheckDirective(value: string | undefined, file = 'Dockerfile', line = 1): CheckConfig {
  const config: CheckConfig = { skipAll: false, skip: [], error: false };
  const text = (value ?? '').trim();
  if (text === '') return config;
  for (const part of text.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) throw new DockerfileSyntaxError(file, line, `failed to parse check options: invalid check option "${part}"`);
    const key = part.slice(0, eq).trim();
    const v = part.slice(eq + 1).trim();
    if (key === 'skip') {
      if (v === 'all') config.skipAll = true;
      else config.skip.push(...v.split(',').map((r) => r.trim()).filter((r) => r !== ''));
    } else if (key === 'error') {
      const b = v.toLowerCase();
      if (['1', 't', 'true'].includes(b)) config.error = true;
      else if (['0', 'f', 'false'].includes(b)) config.error = false;
      else throw new DockerfileSyntaxError(file, line, `failed to parse check options: failed to parse check option "${part}": expected true or false`);
    } else {
      throw new DockerfileSyntaxError(file, line, `failed to parse check options: invalid check option "${key}"`);
    }
  }
  return config;
}

/** Drops skipped rules; returns the kept warnings, sorted by line. */
export function applyCheckConfig(warnings: readonly BuildCheckWarning[], config: CheckConfig): BuildCheckWarning[] {
  if (config.skipAll) return [];
  const skip = new Set(config.skip);
  return warnings.filter((w) => !skip.has(w.rule)).sort((a, b) => a.line - b.line);
}

/** With `error=true`, the error message BuildKit fails with when checks found something. */
export function checkViolation(warnings: readonly BuildCheckWarning[], config: CheckConfig): string | undefined {
  if (!config.error || warnings.length === 0) return undefined;
  const rules = [...new Set(warnings.map((w) => w.rule))].sort();
  return `lint violation found for rules: ${rules.join(', ')}`;
}

/** One line for stderr: `WARN: Rule: message (Dockerfile:3)`. */
export function formatWarning(w: BuildCheckWarning, file = 'Dockerfile'): string {
  return `WARN: ${w.rule}: ${w.message}${w.line > 0 ? ` (${file}:${w.line})` : ''}`;
}

const SECRET_NAME = /(?:_|^)(?:apikey|auth|credential|credentials|key|password|pword|passwd|secret|token)(?:_|$)/i;
const ALLOWED_NAME = /(?:_|^)(?:public)(?:_|$)/i;

export function looksLikeSecret(name: string): boolean {
  return SECRET_NAME.test(name) && !ALLOWED_NAME.test(name);
}

function isLower(s: string): boolean {
  return s === s.toLowerCase();
}
function isUpper(s: string): boolean {
  return s === s.toUpperCase();
}

/**
 * Checks that need only the typed instructions, grouped per stage (each group starts with its FROM;
 * ARGs before the first FROM are not included, as in BuildKit).
 */
export function staticChecks(stages: readonly (readonly Instruction[])[]): BuildCheckWarning[] {
  const out: BuildCheckWarning[] = [];
  let lower = 0;
  let upper = 0;
  for (const stage of stages) {
    for (const i of stage) {
      if (isLower(i.keyword)) lower++;
      else if (isUpper(i.keyword)) upper++;
    }
  }
  const majorityLower = lower > upper;
  for (const stage of stages) {
    let cmd: Instruction | undefined;
    let entrypoint: Instruction | undefined;
    let healthcheck: Instruction | undefined;
    let customShell = false;
    for (const i of stage) {
      const line = i.location.startLine;
      if (majorityLower && !isLower(i.keyword)) {
        out.push(warning('ConsistentInstructionCasing', `Command '${i.keyword}' should match the case of the command majority (lowercase)`, line));
      } else if (!majorityLower && !isUpper(i.keyword)) {
        out.push(warning('ConsistentInstructionCasing', `Command '${i.keyword}' should match the case of the command majority (uppercase)`, line));
      }
      switch (i.kind) {
        case 'from':
          if (i.stageNameAsWritten !== undefined && !isLower(i.stageNameAsWritten)) {
            out.push(warning('StageNameCasing', `Stage name '${i.stageNameAsWritten}' should be lowercase`, line));
          }
          if (i.asKeyword !== undefined && !((isUpper(i.keyword) && isUpper(i.asKeyword)) || (isLower(i.keyword) && isLower(i.asKeyword)))) {
            out.push(warning('FromAsCasing', `'${i.asKeyword}' and '${i.keyword}' keywords' casing do not match`, line));
          }
          if (i.platform === '$TARGETPLATFORM' || i.platform === '${TARGETPLATFORM}') {
            out.push(warning('RedundantTargetPlatform', `Setting platform to predefined ${i.platform} in FROM is redundant as this is the default behavior`, line));
          }
          if (i.stageName === 'scratch' || i.stageName === 'context') {
            out.push(warning('ReservedStageName', `Stage name should not use the same name as reserved stage "${i.stageName}"`, line));
          }
          break;
        case 'maintainer':
          out.push(warning('MaintainerDeprecated', 'Maintainer instruction is deprecated in favor of using label', line));
          break;
        case 'env':
        case 'label': {
          // BuildKit names the instruction as written (`env`, `ENV`).
          const name = i.keyword;
          const pairs = i.kind === 'env' ? i.pairs : i.labels;
          if (pairs.some((p) => p.legacy)) {
            out.push(warning('LegacyKeyValueFormat', `"${name} key=value" should be used instead of legacy "${name} key value" format`, line));
          }
          if (i.kind === 'env') {
            for (const p of i.pairs) if (looksLikeSecret(p.key)) out.push(secretWarning('ENV', p.key, line));
          }
          break;
        }
        case 'arg':
          for (const a of i.args) if (looksLikeSecret(a.key)) out.push(secretWarning('ARG', a.key, line));
          break;
        case 'shell':
          customShell = true;
          break;
        case 'cmd':
        case 'entrypoint': {
          if (i.cmd.form === 'shell' && !customShell && i.cmd.command !== '') {
            out.push(warning('JSONArgsRecommended', `JSON arguments recommended for ${i.keyword} to prevent unintended behavior related to OS signals`, line));
          }
          const previous = i.kind === 'cmd' ? cmd : entrypoint;
          if (previous !== undefined) out.push(multiple(previous, i.keyword));
          if (i.kind === 'cmd') cmd = i;
          else entrypoint = i;
          break;
        }
        case 'healthcheck':
          if (healthcheck !== undefined) out.push(multiple(healthcheck, i.keyword));
          healthcheck = i;
          break;
        case 'expose':
          for (const w of i.words) {
            if (w.includes('$')) continue;
            const [port = '', proto] = w.split('/');
            if (proto !== undefined && proto !== proto.toLowerCase()) {
              out.push(warning('ExposeProtoCasing', `Defined protocol '${w}' in EXPOSE instruction should be lowercase`, line));
            }
            if (port.includes(':')) {
              out.push(warning('ExposeInvalidFormat', `EXPOSE instruction should not define an IP address or host-port mapping, found '${w}'`, line));
            }
          }
          break;
        default:
          break;
      }
    }
  }
  return out;
}

function secretWarning(instruction: 'ARG' | 'ENV', key: string, line: number): BuildCheckWarning {
  return warning('SecretsUsedInArgOrEnv', `Do not use ARG or ENV instructions for sensitive data (${instruction} ${JSON.stringify(key)})`, line);
}

/** Reported at the overridden instruction, naming the instruction as the overriding one writes it. */
function multiple(i: Instruction, keyword: string): BuildCheckWarning {
  return warning(
    'MultipleInstructionsDisallowed',
    `Multiple ${keyword} instructions should not be used in the same stage because only the last one will be used`,
    i.location.startLine,
  );
}

/** The closest known name, for "did you mean" (BuildKit's suggest: case-insensitive, small distance). */
export function suggestName(name: string, options: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const o of options) {
    if (o === name) continue;
    const d = editDistance(name.toLowerCase(), o.toLowerCase());
    if (d < bestDistance) {
      bestDistance = d;
      best = o;
    }
  }
  if (best === undefined) return undefined;
  const limit = Math.max(1, Math.floor(name.length / 3));
  return bestDistance <= limit ? best : undefined;
}

export function undefinedVarWarning(name: string, line: number, known: readonly string[]): BuildCheckWarning {
  const match = suggestName(name, known);
  return warning('UndefinedVar', `Usage of undefined variable '$${name}'${match === undefined ? '' : ` (did you mean $${match}?)`}`, line);
}

export function undefinedArgInFromWarning(name: string, line: number, known: readonly string[]): BuildCheckWarning {
  const match = suggestName(name, known);
  return warning('UndefinedArgInFrom', `FROM argument '${name}' is not declared${match === undefined ? '' : ` (did you mean ${match}?)`}`, line);
}
