import { describe, expect, it } from 'vitest';
import { applyToConfig, defaultPath, resolveWorkdir, setEnv, stageConfigFromBase, type StageConfig } from '../../../src/build/image-config.js';
import { parseDockerfile } from '../../../src/dockerfile/parser.js';
import { parseInstruction } from '../../../src/dockerfile/instructions.js';
import { createExpander, expandInstruction } from '../../../src/dockerfile/expand.js';

/** Expands and applies every instruction of a Dockerfile body (after its FROM) to a base config. */
function configAfter(body: string, base = stageConfigFromBase(undefined)): StageConfig {
  const dockerfile = parseDockerfile(`FROM scratch\n${body}\n`);
  const expander = createExpander('\\');
  return dockerfile.instructions
    .slice(1)
    .map((node) => expandInstruction(parseInstruction(node), () => undefined, expander).instruction)
    .reduce(applyToConfig, base);
}

describe('image config from instructions', () => {
  it('gives a stage without PATH the default one, and drops inherited ONBUILD triggers', () => {
    const stage = stageConfigFromBase({ Env: ['A=1'], OnBuild: ['RUN x'] });
    expect(stage.config.Env).toEqual(['A=1', `PATH=${defaultPath}`]);
    expect(stage.config.OnBuild).toBeUndefined();
    expect(stageConfigFromBase({ Env: ['PATH=/x'] }).config.Env).toEqual(['PATH=/x']);
  });

  it('replaces ENV keys in place and appends new ones', () => {
    expect(setEnv(['A=1', 'B=2'], 'A', '3')).toEqual(['A=3', 'B=2']);
    const { config } = configAfter('ENV A=1 B=2\nENV A=3\nENV C four five');
    expect(config.Env).toEqual([`PATH=${defaultPath}`, 'A=3', 'B=2', 'C=four five']);
  });

  it('collects labels, ports (ranges and protocols), volumes', () => {
    const { config } = configAfter('LABEL a=b c="d e"\nEXPOSE 80 53/udp 8000-8001/tcp\nEXPOSE 83/udp 83/tcp\nVOLUME /data\nVOLUME ["/cache"]');
    expect(config.Labels).toEqual({ a: 'b', c: 'd e' });
    expect(Object.keys(config.ExposedPorts ?? {}).sort()).toEqual(['53/udp', '80/tcp', '8000/tcp', '8001/tcp', '83/tcp', '83/udp']);
    expect(Object.keys(config.Volumes ?? {}).sort()).toEqual(['/cache', '/data']);
  });

  it('runs shell-form CMD/ENTRYPOINT through SHELL', () => {
    const { config } = configAfter('SHELL ["/bin/bash", "-eo", "pipefail", "-c"]\nCMD echo hi\nENTRYPOINT ["/tini", "--"]');
    expect(config.Cmd).toEqual(['/bin/bash', '-eo', 'pipefail', '-c', 'echo hi']);
    expect(config.Entrypoint).toEqual(['/tini', '--']);
  });

  it('clears an inherited CMD when ENTRYPOINT is set, but not one set in this stage', () => {
    const base = stageConfigFromBase({ Cmd: ['sh'] });
    expect(configAfter('ENTRYPOINT ["/app"]', base).config.Cmd).toBeNull();
    expect(configAfter('CMD ["--help"]\nENTRYPOINT ["/app"]', base).config.Cmd).toEqual(['--help']);
    expect(configAfter('ENTRYPOINT []', base).config.Entrypoint).toBeNull();
  });

  it('resolves WORKDIR against the previous one', () => {
    expect(configAfter('WORKDIR /a\nWORKDIR b\nWORKDIR ../c/./d').config.WorkingDir).toBe('/a/c/d');
    expect(resolveWorkdir(undefined, 'rel')).toBe('/rel');
  });

  it('records USER, STOPSIGNAL, HEALTHCHECK, ONBUILD and MAINTAINER', () => {
    const stage = configAfter(
      'USER app:staff\nSTOPSIGNAL SIGTERM\nHEALTHCHECK --interval=5s --retries=2 CMD curl -f http://localhost/\nONBUILD RUN echo child\nMAINTAINER someone',
    );
    expect(stage.config.User).toBe('app:staff');
    expect(stage.config.StopSignal).toBe('SIGTERM');
    expect(stage.config.Healthcheck).toEqual({ Test: ['CMD-SHELL', 'curl -f http://localhost/'], Interval: 5e9, Retries: 2 });
    expect(stage.config.OnBuild).toEqual(['RUN echo child']);
    expect(stage.author).toBe('someone');
  });
});
