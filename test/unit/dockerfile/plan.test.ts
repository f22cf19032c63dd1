import { describe, expect, it } from 'vitest';
import { DockerfileSyntaxError } from '../../../src/dockerfile/ast.js';
import { parsePlatform, resolveBuildArgs } from '../../../src/dockerfile/args.js';
import type { CopyInstruction, EnvInstruction, ExposeInstruction, RunInstruction } from '../../../src/dockerfile/instructions.js';
import { parseDockerfile } from '../../../src/dockerfile/parser.js';
import { planBuild, resolveStage, TargetNotFoundError, type BuildPlan, type PlanOptions } from '../../../src/dockerfile/plan.js';

const defaults: PlanOptions = {
  file: 'Dockerfile',
  buildArgs: {},
  platform: { os: 'linux', architecture: 'amd64' },
  buildPlatform: { os: 'linux', architecture: 'amd64' },
  skipUnusedStages: true,
};

function plan(text: string, options: Partial<PlanOptions> = {}): BuildPlan {
  return planBuild(parseDockerfile(text, 'Dockerfile'), { ...defaults, ...options });
}

/** The expanded text of every instruction of a stage. */
function lines(p: BuildPlan, stage = p.target): string[] {
  return p.stages[stage]?.instructions.map((i) => i.text) ?? [];
}

function envOf(p: BuildPlan, stage: number, line: number): Record<string, string> {
  const i = p.stages[stage]?.instructions.find((x) => x.line === line)?.expanded as EnvInstruction | undefined;
  return Object.fromEntries((i?.pairs ?? []).map((x) => [x.key, x.value]));
}

function planError(text: string, options: Partial<PlanOptions> = {}): DockerfileSyntaxError {
  try {
    plan(text, options);
  } catch (err) {
    if (err instanceof DockerfileSyntaxError) return err;
    throw err;
  }
  throw new Error('expected a DockerfileSyntaxError');
}

describe('global ARGs', () => {
  it('are usable in FROM but only enter a stage through a bare ARG', () => {
    const p = plan('ARG V=3.19\nFROM alpine:$V\nENV A=x$V\nARG V\nENV B=x$V\n');
    expect(p.stages[0]?.baseName).toBe('alpine:3.19');
    expect(p.stages[0]?.base).toEqual({ kind: 'image', ref: 'alpine:3.19' });
    expect(lines(p)).toEqual(['ENV A=x', 'ARG V=3.19', 'ENV B=x3.19']);
  });

  it('take --build-arg values, and defaults may use earlier global ARGs', () => {
    const p = plan('ARG REG=docker.io\nARG IMG=${REG}/library/alpine\nFROM $IMG\n', { buildArgs: { REG: 'mirror.local' } });
    expect(p.stages[0]?.baseName).toBe('mirror.local/library/alpine');
    expect(p.globalArgs).toMatchObject({ REG: 'mirror.local', IMG: 'mirror.local/library/alpine' });
  });

  it('fail when FROM expands to nothing, naming the line', () => {
    expect(planError('ARG IMG\n\nFROM $IMG\n')).toMatchObject({ line: 3, detail: 'base name ($IMG) should not be blank' });
  });

  it('give the automatic platform ARGs in FROM and after a bare ARG', () => {
    const p = plan('FROM --platform=$BUILDPLATFORM scratch AS b\nARG TARGETPLATFORM TARGETOS TARGETARCH TARGETVARIANT BUILDARCH\n', {
      platform: parsePlatform('linux/arm/v7'),
      buildPlatform: parsePlatform('linux/amd64'),
    });
    expect(p.stages[0]?.platform).toBe('linux/amd64');
    expect(p.stages[0]?.instructions[0]?.argValues).toEqual({
      TARGETPLATFORM: 'linux/arm/v7', TARGETOS: 'linux', TARGETARCH: 'arm', TARGETVARIANT: 'v7', BUILDARCH: 'amd64',
    });
  });

  it('do not leak automatic ARGs into a stage without a declaration', () => {
    expect(lines(plan('FROM scratch\nENV A=${TARGETARCH:-none}\n'))).toEqual(['ENV A=none']);
  });
});

describe('stage ARGs and ENV', () => {
  it('--build-arg beats a default; defaults expand with the stage environment', () => {
    const p = plan('FROM scratch\nENV BASE=/opt\nARG DIR=$BASE/app\nARG MODE=dev\nWORKDIR $DIR/$MODE\n', { buildArgs: { MODE: 'prod' } });
    expect(lines(p)).toEqual(['ENV BASE=/opt', 'ARG DIR=/opt/app', 'ARG MODE=prod', 'WORKDIR /opt/app/prod']);
  });

  it('ENV after an ARG overrides it, and an ARG after an ENV overrides it (BuildKit: the later one wins)', () => {
    const p = plan('FROM scratch\nARG V\nENV V=env\nUSER $V\nARG V\nUSER $V\n', { buildArgs: { V: 'arg' } });
    expect(lines(p)).toEqual(['ARG V=arg', 'ENV V=env', 'USER env', 'ARG V=arg', 'USER arg']);
  });

  it('expands all of one ENV line against the environment before it', () => {
    const p = plan('FROM scratch\nENV abc=hello\nENV abc=bye def=$abc\nENV ghi=$abc\n');
    expect(envOf(p, 0, 3)).toEqual({ abc: 'bye', def: 'hello' });
    expect(envOf(p, 0, 4)).toEqual({ ghi: 'bye' });
  });

  it('removes quotes and keeps escapes as the shell lexer does', () => {
    const p = plan('FROM scratch\nENV A="a b" B=\'$A\' C="$A"\nLABEL "k 1"="v $A"\n');
    expect(envOf(p, 0, 2)).toEqual({ A: 'a b', B: '$A', C: '' });
    expect(p.stages[0]?.instructions[1]?.expanded).toMatchObject({ labels: [{ key: 'k 1', value: 'v a b' }] });
  });

  it('starts a scratch stage with the default PATH', () => {
    expect(lines(plan('FROM scratch\nENV PATH=$PATH:/x\n'))).toEqual(['ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/x']);
  });

  it('does not carry ARG values from one stage to an unrelated one', () => {
    const p = plan('FROM scratch AS a\nARG X=1\nFROM scratch AS b\nARG X\nENV Y=${X:-unset}\n', { skipUnusedStages: false });
    expect(lines(p, 1)).toEqual(['ARG X', 'ENV Y=unset']);
  });
});

describe('a stage FROM another stage', () => {
  const text = [
    'FROM scratch AS parent',
    'ARG VERSION=1.0',
    'ENV HOME=/root',
    'FROM parent AS child',
    'ARG VERSION',
    'ARG LIB=$HOME/lib-$VERSION',
    'RUN echo $VERSION',
    '',
  ].join('\n');

  it('inherits the parent ENV and ARG values', () => {
    const p = plan(text);
    expect(p.stages[1]?.base).toEqual({ kind: 'stage', index: 0 });
    expect(lines(p, 1)).toEqual(['ARG VERSION=1.0', 'ARG LIB=/root/lib-1.0', 'RUN echo $VERSION']);
  });

  it('gives RUN its environment and the history args', () => {
    const p = plan(text);
    const resolved = resolveStage(p, 1, { baseImageEnv: [], parent: resolveStage(p, 0, { baseImageEnv: [] }).state });
    const run = resolved.instructions.find((i) => i.instruction.kind === 'run');
    expect(run?.runEnv).toEqual(['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'VERSION=1.0', 'HOME=/root', 'LIB=/root/lib-1.0']);
    expect(run?.historyArgs).toEqual(['VERSION=1.0', 'LIB=/root/lib-1.0']);
    expect(resolved.state.configEnv).toEqual([['PATH', '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], ['HOME', '/root']]);
  });

  it('runs the parent stage ONBUILD triggers first', () => {
    const p = plan('FROM scratch AS base\nONBUILD ENV TRIGGERED=yes\nFROM base\nENV AFTER=$TRIGGERED\n');
    expect(p.stages[1]?.instructions.map((i) => [i.text, i.fromOnbuild ?? false])).toEqual([
      ['ENV TRIGGERED=yes', true],
      ['ENV AFTER=yes', false],
    ]);
  });
});

describe('which instructions expand', () => {
  it('leaves RUN, CMD, ENTRYPOINT, HEALTHCHECK and ONBUILD alone', () => {
    const p = plan('FROM scratch\nARG X=1\nRUN echo $X\nCMD echo $X\nENTRYPOINT ["$X"]\nHEALTHCHECK CMD test $X\nONBUILD RUN $X\n');
    expect(lines(p).slice(1)).toEqual(['RUN echo $X', 'CMD echo $X', 'ENTRYPOINT ["$X"]', 'HEALTHCHECK CMD test $X', 'ONBUILD RUN $X']);
  });

  it('expands ADD, COPY, EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR', () => {
    const p = plan(
      'FROM scratch\nARG D=/srv U=app P="80 443/udp" S=SIGQUIT M=755\n' +
        'COPY --chown=$U --chmod=$M --exclude=*.$U src/$U $D/\nADD --chown=${U}:${U} a.tgz $D\nEXPOSE $P\nLABEL owner=$U\n' +
        'STOPSIGNAL $S\nUSER $U\nVOLUME $D/data\nWORKDIR $D\n',
    );
    expect(lines(p).slice(1)).toEqual([
      'COPY --chown=app --chmod=755 --exclude=*.app src/app /srv/',
      'ADD --chown=app:app a.tgz /srv',
      'EXPOSE 80/tcp 443/udp',
      'LABEL owner=app',
      'STOPSIGNAL SIGQUIT',
      'USER app',
      'VOLUME ["/srv/data"]',
      'WORKDIR /srv',
    ]);
    const copy = p.stages[0]?.instructions[1]?.expanded as CopyInstruction;
    expect(copy.mode).toEqual({ kind: 'octal', mode: 0o755 });
    const expose = p.stages[0]?.instructions[3]?.expanded as ExposeInstruction;
    expect(expose.ports).toEqual([{ start: 80, end: 80, protocol: 'tcp' }, { start: 443, end: 443, protocol: 'udp' }]);
  });

  it('expands RUN --mount values field by field', () => {
    const p = plan('FROM scratch\nARG CACHE=/root/.npm\nRUN --mount=type=cache,target=$CACHE,id=npm-$CACHE npm ci\n');
    const run = p.stages[0]?.instructions[1]?.expanded as RunInstruction;
    expect(run.mounts).toEqual([{ type: 'cache', target: '/root/.npm', id: 'npm-/root/.npm', sharing: 'shared', readonly: false }]);
  });

  it('expands heredoc sources unless the delimiter was quoted', () => {
    const p = plan('FROM scratch\nARG WHO=world\nCOPY <<A <<"B" /\nhi "$WHO"\nA\nhi $WHO\nB\n');
    const copy = p.stages[0]?.instructions[1]?.expanded as CopyInstruction;
    expect(copy.heredocSources).toEqual([
      { name: 'A', content: 'hi "world"\n', expand: true },
      { name: 'B', content: 'hi $WHO\n', expand: false },
    ]);
  });

  it('reports an expansion error with its line', () => {
    expect(planError('FROM scratch\n\nWORKDIR ${DIR:?must be set}\n')).toMatchObject({ line: 3 });
    expect(planError('FROM scratch\nARG X\nEXPOSE $X/icmp\n')).toMatchObject({ line: 3, detail: 'invalid proto: icmp' });
  });
});

describe('the base image environment hook', () => {
  it('finishes expansion with the image config Env at build time', () => {
    const p = plan('FROM alpine\nENV PATH=$PATH:/opt/bin\nWORKDIR $HOME\n');
    expect(p.stages[0]?.envComplete).toBe(false);
    const resolved = resolveStage(p, 0, { baseImageEnv: ['PATH=/bin', 'HOME=/home/app'] });
    expect(resolved.instructions.map((i) => i.text)).toEqual(['ENV PATH=/bin:/opt/bin', 'WORKDIR /home/app']);
    expect(resolved.warnings).toEqual([]);
  });

  it('reports undefined variables only where the environment is fully known', () => {
    const p = plan('FROM alpine AS a\nWORKDIR $NOPE\nFROM scratch\nARG FOO=1\nARG BAR\nUSER $FOOO\nUSER $BAR\n', { skipUnusedStages: false });
    // A declared ARG without a value is not "undefined"; suggestions come from the variables that are set.
    expect(p.warnings.filter((w) => w.rule === 'UndefinedVar')).toEqual([
      expect.objectContaining({ line: 6, message: "Usage of undefined variable '$FOOO' (did you mean $FOO?)" }),
    ]);
    const hookWarnings = resolveStage(p, 0, { baseImageEnv: [] }).warnings.filter((w) => w.rule === 'UndefinedVar');
    expect(hookWarnings.map((w) => w.message)).toEqual(["Usage of undefined variable '$NOPE'"]);
  });
});

describe('build args', () => {
  it('takes bare names from the injected environment', () => {
    expect(resolveBuildArgs(['A=1', 'B', 'C', 'D=x=y'], { B: 'from-env' })).toEqual({ A: '1', B: 'from-env', D: 'x=y' });
  });

  it('reports unused ones, but not predefined proxy ARGs, which go to RUN only', () => {
    const p = plan('FROM scratch\nARG USED\nRUN env\n', { buildArgs: { USED: '1', UNUSED: '2', HTTP_PROXY: 'http://proxy:3128' } });
    expect(p.warnings).toContainEqual({ rule: 'UnusedBuildArgs', message: 'One or more build-args [UNUSED] were not consumed', line: 0 });
    expect(p.proxyEnv).toEqual({ HTTP_PROXY: 'http://proxy:3128' });
    const run = resolveStage(p, 0, { baseImageEnv: [] }).instructions[1];
    expect(run?.historyArgs).toEqual(['USED=1']);
    expect(run?.runEnv).not.toContain('HTTP_PROXY=http://proxy:3128');
  });

  it('puts a declared proxy ARG in the history like any other', () => {
    const p = plan('FROM scratch\nARG http_proxy\nRUN true\n', { buildArgs: { http_proxy: 'http://p' } });
    expect(resolveStage(p, 0, { baseImageEnv: [] }).instructions[1]?.historyArgs).toEqual(['http_proxy=http://p']);
  });
});

describe('plan shape and errors', () => {
  it('is plain JSON', () => {
    const p = plan('FROM scratch AS a\nCOPY x /\nFROM a\nRUN true\n');
    expect(JSON.parse(JSON.stringify(p))).toEqual(p);
  });

  it('rejects instructions before the first FROM other than ARG', () => {
    expect(planError('ARG A\nRUN true\nFROM scratch\n')).toMatchObject({ line: 2 });
    expect(planError('ARG A\n').detail).toContain('dockerfile contains no stages to build');
  });

  it('names the stages when --target is unknown', () => {
    expect(() => plan('FROM scratch AS one\nFROM scratch AS two\n', { target: 'three' })).toThrow(TargetNotFoundError);
    expect(() => plan('FROM scratch AS one\nFROM scratch AS two\n', { target: 'three' })).toThrow('target stage "three" could not be found (stages: one, two)');
  });

  it('sets TARGETSTAGE to the target', () => {
    const p = plan('FROM scratch AS one\nARG TARGETSTAGE\nFROM scratch AS two\n', { target: 'one' });
    expect(p.stages[0]?.instructions[0]?.argValues).toEqual({ TARGETSTAGE: 'one' });
  });

  it('fails a bad FROM --platform with the line', () => {
    expect(planError('ARG P=linux/\nFROM --platform=$P scratch\n')).toMatchObject({ line: 2 });
  });
});

describe('options and hooks', () => {
  it('resolves a --build-arg list with the injected environment', () => {
    const p = plan('FROM scratch\nARG A\nARG B\n', { buildArgs: ['A=1', 'B'], env: { B: 'env-b' } });
    expect(p.stages[0]?.instructions.map((i) => i.argValues)).toEqual([{ A: '1' }, { B: 'env-b' }]);
  });

  it('prints the expanded FROM line', () => {
    const p = plan('ARG V=1\nFROM --platform=linux/arm64 alpine:$V AS Base\n');
    expect(p.stages[0]?.fromText).toBe('FROM --platform=linux/arm64 alpine:1 AS base');
  });

  it('runs a registry base image ONBUILD triggers first', async () => {
    const { parseOnbuildTriggers } = await import('../../../src/dockerfile/plan.js');
    const p = plan('FROM node:onbuild\nENV B=$A\n');
    const triggers = parseOnbuildTriggers(['ENV A=from-trigger', 'COPY . /app'], 'Dockerfile', 1);
    const r = resolveStage(p, 0, { baseImageEnv: [], baseOnbuild: triggers });
    expect(r.instructions.map((i) => [i.line, i.text, i.fromOnbuild ?? false])).toEqual([
      [1, 'ENV A=from-trigger', true],
      [1, 'COPY . /app', true],
      [2, 'ENV B=from-trigger', false],
    ]);
    expect(() => parseOnbuildTriggers(['FROM x'], 'Dockerfile', 1)).toThrow("Dockerfile:1: FROM isn't allowed as an ONBUILD trigger");
  });
});

describe('working directory and escapes', () => {
  it('makes WORKDIR absolute against the previous one and the base image', () => {
    const p = plan('FROM alpine\nWORKDIR app\nWORKDIR ../srv/./x\nCOPY a b\n');
    const r = resolveStage(p, 0, { baseImageEnv: [], baseImageWorkdir: '/home' });
    expect(r.instructions.map((i) => [i.text, i.workdir])).toEqual([
      ['WORKDIR /home/app', '/home/app'],
      ['WORKDIR /home/srv/x', '/home/srv/x'],
      ['COPY a b', '/home/srv/x'],
    ]);
    expect(r.state.workdir).toBe('/home/srv/x');
  });

  it('expands with the backtick escape when the directive asks for it', () => {
    const p = plan('# escape=`\nFROM scratch\nENV A=x B=`$A C=$A\n');
    expect(p.stages[0]?.instructions[0]?.expanded).toMatchObject({ pairs: [{ key: 'A', value: 'x' }, { key: 'B', value: '$A' }, { key: 'C', value: '' }] });
  });

  it('rejects an ENV name that expands to nothing and an empty COPY --from', () => {
    expect(planError('FROM scratch\nENV $NOPE=1\n')).toMatchObject({ line: 2, detail: 'ENV names can not be blank' });
    expect(planError('FROM scratch\nCOPY --from=$NOPE a b\n').line).toBe(2);
  });
});

describe('formatPlanText', () => {
  it('prints stages in build order, skipped ones last, lines and warnings', async () => {
    const { formatPlanText } = await import('../../../src/dockerfile/plan.js');
    const p = plan('ARG V=1\nFROM alpine:$V AS base\nRUN make\nFROM alpine AS unused\nFROM scratch\nMAINTAINER me\nCOPY --from=base /out /\n');
    expect(formatPlanText(p)).toBe(
      [
        '# Dockerfile: target stage-2 (stage 2), platform linux/amd64, build platform linux/amd64',
        'stage 0 base (group 1; base image ENV applied at build time)',
        '     2: FROM alpine:1 AS base',
        '     3: RUN make',
        'stage 2 stage-2 (group 2; needs base)',
        '     5: FROM scratch',
        '     6: MAINTAINER me',
        '     7: COPY --from=base /out /',
        'stage 1 unused (SKIPPED: not needed by the target)',
        '     4: FROM alpine AS unused',
        'WARN: MaintainerDeprecated: Maintainer instruction is deprecated in favor of using label (Dockerfile:6)',
        '',
      ].join('\n'),
    );
  });
});
