import { describe, expect, it } from 'vitest';
import { DockerfileSyntaxError } from '../../../src/dockerfile/ast.js';
import { formatWarning, looksLikeSecret, parseCheckDirective } from '../../../src/dockerfile/checks.js';
import { parseDockerfile } from '../../../src/dockerfile/parser.js';
import { planBuild, type BuildPlan } from '../../../src/dockerfile/plan.js';

function plan(text: string): BuildPlan {
  return planBuild(parseDockerfile(text, 'Dockerfile'), {
    file: 'Dockerfile',
    buildArgs: {},
    platform: { os: 'linux', architecture: 'amd64' },
    buildPlatform: { os: 'linux', architecture: 'amd64' },
    skipUnusedStages: false,
  });
}

/** `Rule@line` for each warning, in line order. */
function found(text: string): string[] {
  return plan(text).warnings.map((w) => `${w.rule}@${w.line}`);
}

describe('build checks', () => {
  it('MaintainerDeprecated', () => {
    const w = plan('FROM scratch\nMAINTAINER me\n').warnings;
    expect(w).toEqual([
      { rule: 'MaintainerDeprecated', message: 'Maintainer instruction is deprecated in favor of using label', line: 2, url: 'https://docs.docker.com/go/dockerfile/rule/maintainer-deprecated/' },
    ]);
  });

  it('LegacyKeyValueFormat for ENV and LABEL', () => {
    expect(found('FROM scratch\nENV A 1\nENV B=2\nLABEL c 3\n')).toEqual(['LegacyKeyValueFormat@2', 'LegacyKeyValueFormat@4']);
    expect(plan('FROM scratch\nENV A 1\n').warnings[0]?.message).toBe('"ENV key=value" should be used instead of legacy "ENV key value" format');
  });

  it('JSONArgsRecommended for shell-form CMD and ENTRYPOINT, not after SHELL', () => {
    expect(found('FROM scratch\nENTRYPOINT run me\nCMD ["ok"]\n')).toEqual(['JSONArgsRecommended@2']);
    expect(found('FROM scratch\nSHELL ["/bin/bash", "-c"]\nCMD run me\n')).toEqual([]);
    expect(plan('FROM scratch\nCMD x\n').warnings[0]?.message).toBe('JSON arguments recommended for CMD to prevent unintended behavior related to OS signals');
  });

  it('StageNameCasing and FromAsCasing', () => {
    expect(found('FROM scratch AS Build\n')).toEqual(['StageNameCasing@1']);
    expect(found('FROM scratch as build\n')).toEqual(['FromAsCasing@1']);
    expect(plan('from scratch AS build\n').warnings.map((w) => w.message)).toEqual(["'AS' and 'from' keywords' casing do not match"]);
  });

  it('ConsistentInstructionCasing against the majority', () => {
    expect(found('FROM scratch\nRUN a\nrun b\nCopy x /\n')).toEqual(['ConsistentInstructionCasing@3', 'ConsistentInstructionCasing@4']);
    expect(plan('from scratch\nrun a\nRUN b\n').warnings.map((w) => w.message)).toEqual(["Command 'RUN' should match the case of the command majority (lowercase)"]);
  });

  it('ReservedStageName', () => {
    expect(plan('FROM alpine AS scratch\n').warnings.map((w) => w.message)).toEqual(['Stage name should not use the same name as reserved stage "scratch"']);
  });

  it('MultipleInstructionsDisallowed on all but the last CMD, ENTRYPOINT and HEALTHCHECK of a stage', () => {
    const text = 'FROM scratch\nCMD ["a"]\nCMD ["b"]\nCMD ["c"]\nHEALTHCHECK NONE\nHEALTHCHECK NONE\nFROM scratch\nCMD ["d"]\n';
    expect(found(text)).toEqual(['MultipleInstructionsDisallowed@2', 'MultipleInstructionsDisallowed@3', 'MultipleInstructionsDisallowed@5']);
  });

  it('SecretsUsedInArgOrEnv', () => {
    expect(found('FROM scratch\nARG GITHUB_TOKEN\nENV DB_PASSWORD=x PUBLIC_KEY=y MONKEY=z\n')).toEqual(['SecretsUsedInArgOrEnv@2', 'SecretsUsedInArgOrEnv@3']);
    expect(plan('FROM scratch\nARG aws_secret_key\n').warnings[0]?.message).toBe('Do not use ARG or ENV instructions for sensitive data (ARG "aws_secret_key")');
    expect([looksLikeSecret('API_KEY'), looksLikeSecret('KEYBOARD'), looksLikeSecret('auth'), looksLikeSecret('PUBLIC_TOKEN')]).toEqual([true, false, true, false]);
  });

  it('UndefinedVar and UndefinedArgInFrom', () => {
    expect(plan('FROM $BASEIMG:1\n').warnings.map((w) => w.message)).toContain("FROM argument 'BASEIMG' is not declared");
    expect(plan('ARG VERSIN=1\nFROM alpine:$VERSION\n').warnings.map((w) => w.message)).toEqual(["FROM argument 'VERSION' is not declared (did you mean VERSIN?)"]);
    expect(found('ARG TAG\nFROM alpine:latest$TAG\n')).toEqual([]);
    expect(found('FROM scratch\nENV A=$NOT_SET\n')).toEqual(['UndefinedVar@2']);
  });

  it('ExposeProtoCasing and ExposeInvalidFormat', () => {
    expect(found('FROM scratch\nEXPOSE 80/TCP 127.0.0.1:8080:80\n')).toEqual(['ExposeProtoCasing@2', 'ExposeInvalidFormat@2']);
  });
});

describe('the check directive', () => {
  it('skips named rules or all of them', () => {
    expect(found('# check=skip=MaintainerDeprecated\nFROM scratch\nMAINTAINER me\nENV A 1\n')).toEqual(['LegacyKeyValueFormat@4']);
    expect(found('# check=skip=all\nFROM scratch\nMAINTAINER me\n')).toEqual([]);
  });

  it('turns warnings into an error with error=true', () => {
    expect(() => plan('# check=error=true\nFROM scratch\nMAINTAINER me\n')).toThrow('Dockerfile:3: lint violation found for rules: MaintainerDeprecated');
    expect(found('# check=skip=MaintainerDeprecated;error=true\nFROM scratch\nMAINTAINER me\n')).toEqual([]);
  });

  it('rejects malformed options', () => {
    expect(() => parseCheckDirective('skip')).toThrow(DockerfileSyntaxError);
    expect(() => parseCheckDirective('error=maybe')).toThrow('failed to parse check option "error=maybe"');
    expect(() => parseCheckDirective('level=3')).toThrow('invalid check option "level"');
    expect(parseCheckDirective(' skip = A , B ; error = TRUE ')).toEqual({ skipAll: false, skip: ['A', 'B'], error: true });
  });

  it('formats a warning for stderr', () => {
    expect(formatWarning({ rule: 'MaintainerDeprecated', message: 'm', line: 3 }, 'ci/Dockerfile')).toBe('WARN: MaintainerDeprecated: m (ci/Dockerfile:3)');
  });
});

describe('more checks', () => {
  it('RedundantTargetPlatform and NoEmptyContinuation', () => {
    expect(found('FROM --platform=$TARGETPLATFORM scratch\n')).toEqual(['RedundantTargetPlatform@1']);
    // The line is the parser's (it locates the warning in the continued instruction).
    const text = 'FROM scratch\nRUN a \\\n\n  b\n';
    const line = parseDockerfile(text).warnings[0]?.range.startLine;
    expect(found(text)).toEqual([`NoEmptyContinuation@${line}`]);
  });
});

describe('checks that need the stage environment', () => {
  it('WorkdirRelativePath on the first WORKDIR of a stage chain only', () => {
    expect(found('FROM alpine AS a\nWORKDIR app\nWORKDIR sub\nFROM a\nWORKDIR more\nFROM alpine\nWORKDIR /abs\nWORKDIR rel\n')).toEqual(['WorkdirRelativePath@2']);
    expect(plan('FROM alpine\nWORKDIR app\n').warnings[0]?.message).toBe('Relative workdir "app" can have unexpected results if the base image changes');
  });
});
