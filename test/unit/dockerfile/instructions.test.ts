import { describe, expect, it } from 'vitest';
import { DockerfileSyntaxError, type InstructionNode } from '../../../src/dockerfile/ast.js';
import {
  exposedPortKeys,
  formatInstruction,
  parseGoDuration,
  parseInstruction,
  type AddInstruction,
  type CopyInstruction,
  type Instruction,
  type RunInstruction,
} from '../../../src/dockerfile/instructions.js';
import { parseDockerfile } from '../../../src/dockerfile/parser.js';

function typed(text: string): Instruction[] {
  return parseDockerfile(text).instructions.map((n) => parseInstruction(n, 'Dockerfile'));
}

function one<K extends Instruction['kind']>(line: string, kind: K): Extract<Instruction, { kind: K }> {
  const all = typed(`FROM scratch\n${line}\n`);
  const i = all[1];
  if (i?.kind !== kind) throw new Error(`expected ${kind}, got ${i?.kind ?? 'nothing'}`);
  return i as Extract<Instruction, { kind: K }>;
}

function error(text: string): DockerfileSyntaxError {
  try {
    typed(text);
  } catch (err) {
    if (err instanceof DockerfileSyntaxError) return err;
    throw err;
  }
  throw new Error('expected a DockerfileSyntaxError');
}

describe('FROM', () => {
  it('reads image, platform and a lower-cased stage name', () => {
    const [from] = typed('FROM --platform=$BUILDPLATFORM golang:1.22 AS Builder\n');
    expect(from).toMatchObject({ kind: 'from', image: 'golang:1.22', platform: '$BUILDPLATFORM', stageName: 'builder', stageNameAsWritten: 'Builder', asKeyword: 'AS' });
  });
  it('rejects two arguments and bad stage names with the line', () => {
    expect(error('ARG X\n\nFROM alpine foo\n')).toMatchObject({ line: 3, detail: 'FROM requires either one or three arguments' });
    expect(error('FROM alpine AS 1st\n').detail).toContain('invalid name for build stage: "1st"');
    expect(error('FROM --plat=x alpine\n').detail).toMatch(/^unknown flag: --plat \(expected one of: --platform\)/);
  });
});

describe('RUN', () => {
  it('keeps shell form as one string and exec form as a list', () => {
    expect(one('RUN echo "a b" && ls', 'run').cmd).toEqual({ form: 'shell', command: 'echo "a b" && ls' });
    expect(one('RUN ["echo", "a b"]', 'run').cmd).toEqual({ form: 'exec', args: ['echo', 'a b'] });
  });

  it('attaches heredocs as inline files', () => {
    const run = typed('FROM scratch\nRUN <<EOF\necho hi\nEOF\n')[1] as RunInstruction;
    expect(run.cmd).toEqual({ form: 'shell', command: '<<EOF' });
    expect(run.heredocs).toEqual([{ name: 'EOF', content: 'echo hi\n', chomp: false, expand: true, fileDescriptor: 0 }]);
  });

  it('parses every mount type with Docker defaults', () => {
    const run = one(
      'RUN --mount=type=cache,target=/root/.cache,sharing=locked,mode=0700,uid=1000,gid=1000 ' +
        '--mount=type=bind,from=build,source=/out,target=/in ' +
        '--mount=type=secret,id=npmrc --mount=type=secret,id=tok,env=TOKEN,required ' +
        '--mount=type=tmpfs,target=/tmp,size=64m --mount=type=ssh ' +
        '--mount=target=/ctx,rw make',
      'run',
    );
    expect(run.mounts).toEqual([
      { type: 'cache', target: '/root/.cache', sharing: 'locked', mode: 0o700, uid: 1000, gid: 1000, readonly: false, id: '/root/.cache' },
      { type: 'bind', from: 'build', source: '/out', target: '/in', readonly: true },
      { type: 'secret', id: 'npmrc', target: '/run/secrets/npmrc', required: false, readonly: true },
      { type: 'secret', id: 'tok', env: 'TOKEN', required: true, readonly: true },
      { type: 'tmpfs', target: '/tmp', size: 64 * 1024 * 1024, readonly: false },
      { type: 'ssh', id: 'default', target: '/run/buildkit/ssh_agent.0', required: false, readonly: true },
      { type: 'bind', target: '/ctx', readonly: false },
    ]);
  });

  it('takes a secret id from its target and accepts src as id', () => {
    expect(one('RUN --mount=type=secret,target=/etc/key.pem cat /etc/key.pem', 'run').mounts?.[0]).toMatchObject({ id: 'key.pem', target: '/etc/key.pem' });
    expect(one('RUN --mount=type=secret,src=aws cat x', 'run').mounts?.[0]).toMatchObject({ id: 'aws', target: '/run/secrets/aws' });
  });

  it('reads --network and --security', () => {
    expect(one('RUN --network=none --security=insecure true', 'run')).toMatchObject({ network: 'none', security: 'insecure' });
  });

  it.each([
    ['RUN --mount=type=nfs,target=/x true', 'unsupported mount type "nfs"'],
    ['RUN --mount=type=cache,target=/x,sharing=open true', 'unsupported sharing value "open"'],
    ['RUN --mount=type=bind,target=/x,mode=0755 true', 'mode not allowed for "bind" type mounts'],
    ['RUN --mount=type=cache,target=/x,uid=me true', 'invalid value me for uid'],
    ['RUN --mount=type=cache,target=/x,foo=1 true', "unexpected key 'foo' in 'foo=1'"],
    ['RUN --mount=type=bind,required,target=/x true', "unexpected key 'required' for mount type 'bind'"],
    ['RUN --mount=type=secret,id=a,from=b true', 'secret mount should not have a from'],
    ['RUN --mount=type=secret true', 'invalid secret mount. one of source, target required'],
    ['RUN --mount=type=cache true', 'mount type=cache requires a target'],
    ['RUN --mount=type=bind,target=/x,from=$STAGE true', "'from' doesn't support variable expansion, define alias stage instead"],
    ['RUN --mount=type=bind,target=/x,bogus true', "invalid field 'bogus' must be a key=value pair"],
    ['RUN --network=bridge true', 'unsupported network mode "bridge"'],
    ['RUN --security=privileged true', 'unsupported security mode "privileged"'],
    ['RUN --mount true', 'missing a value on flag: --mount'],
    ['RUN --network=none --network=host true', 'duplicate flag specified: --network'],
  ])('%s fails: %s', (line, message) => {
    const err = error(`FROM scratch\n${line}\n`);
    expect(err.line).toBe(2);
    expect(err.detail).toContain(message);
    expect(err.message).toMatch(/^Dockerfile:2: /);
  });

  it('defers mount parsing while a value holds a variable', () => {
    const run = one('RUN --mount=type=cache,target=$DIR true', 'run');
    expect(run.mounts).toBeUndefined();
    expect(run.mountSpecs).toEqual(['type=cache,target=$DIR']);
  });
});

describe('CMD, ENTRYPOINT, SHELL', () => {
  it('types both forms', () => {
    expect(one('CMD ["nginx", "-g", "daemon off;"]', 'cmd').cmd).toEqual({ form: 'exec', args: ['nginx', '-g', 'daemon off;'] });
    expect(one('ENTRYPOINT exec top -b', 'entrypoint').cmd).toEqual({ form: 'shell', command: 'exec top -b' });
    expect(one('SHELL ["powershell", "-command"]', 'shell').shell).toEqual(['powershell', '-command']);
  });
  it('treats a trailing comment after JSON as shell form, like Docker', () => {
    expect(one('ENTRYPOINT ["x"] # comment', 'entrypoint').cmd).toEqual({ form: 'shell', command: '["x"] # comment' });
  });
  it('requires SHELL in JSON form', () => {
    expect(error('FROM scratch\nSHELL /bin/bash -c\n').detail).toBe('SHELL requires the arguments to be in JSON form');
  });
});

describe('ENV, LABEL, ARG, MAINTAINER', () => {
  it('reads key=value pairs and the legacy form', () => {
    expect(one('ENV A=1 B="two words" C=3', 'env').pairs).toEqual([
      { key: 'A', value: '1', legacy: false },
      { key: 'B', value: '"two words"', legacy: false },
      { key: 'C', value: '3', legacy: false },
    ]);
    expect(one('ENV PATH /usr/bin:/bin extra', 'env').pairs).toEqual([{ key: 'PATH', value: '/usr/bin:/bin extra', legacy: true }]);
    expect(one('LABEL org.opencontainers.image.title="kiln" version=1', 'label').labels).toHaveLength(2);
  });
  it('reads several ARGs with and without defaults', () => {
    expect(one('ARG A B=2 C="x y"', 'arg').args).toEqual([{ key: 'A' }, { key: 'B', defaultValue: '2' }, { key: 'C', defaultValue: '"x y"' }]);
    expect(error('FROM scratch\nARG =x\n').detail).toBe('ARG names can not be blank');
  });
  it('reads MAINTAINER', () => {
    expect(one('MAINTAINER Jane <jane@example.com>', 'maintainer').maintainer).toBe('Jane <jane@example.com>');
  });
  it('rejects an ENV without a value (parser error, located)', () => {
    expect(() => typed('FROM scratch\nENV PATH\n')).toThrow(/Dockerfile:2/);
  });
});

describe('EXPOSE', () => {
  it('parses ports, protocols and ranges', () => {
    const e = one('EXPOSE 80 53/udp 8000-8002/tcp 9000/SCTP', 'expose');
    expect(e.ports).toEqual([
      { start: 80, end: 80, protocol: 'tcp' },
      { start: 53, end: 53, protocol: 'udp' },
      { start: 8000, end: 8002, protocol: 'tcp' },
      { start: 9000, end: 9000, protocol: 'sctp', protocolAsWritten: 'SCTP' },
    ]);
    expect(e.ports?.flatMap(exposedPortKeys)).toEqual(['80/tcp', '53/udp', '8000/tcp', '8001/tcp', '8002/tcp', '9000/sctp']);
  });
  it('rejects bad protocols and ports', () => {
    expect(error('FROM scratch\nEXPOSE 80/icmp\n').detail).toBe('invalid proto: icmp');
    expect(error('FROM scratch\nEXPOSE 99999\n').detail).toContain('invalid containerPort: 99999');
    expect(error('FROM scratch\nEXPOSE 90-80\n').detail).toContain('invalid containerPort: 90-80');
  });
});

describe('COPY and ADD', () => {
  it('reads every COPY flag', () => {
    const c = one('COPY --from=build --chown=app:app --chmod=0755 --link --parents --exclude=*.md --exclude=tmp ./a ./b /dst/', 'copy');
    expect(c).toMatchObject({
      from: 'build', chown: 'app:app', chmod: '0755', mode: { kind: 'octal', mode: 0o755 }, link: true, parents: true,
      excludes: ['*.md', 'tmp'], sources: ['./a', './b'], destination: '/dst/', json: false,
    });
  });
  it('accepts symbolic chmod and rejects nonsense', () => {
    expect(one('COPY --chmod=u+x,go=rx a /b', 'copy').mode).toEqual({ kind: 'symbolic', expression: 'u+x,go=rx' });
    expect(error('FROM scratch\nCOPY --chmod=8888 a /b\n').detail).toContain("invalid chmod parameter: '8888'");
    expect(error('FROM scratch\nCOPY --chmod=17777 a /b\n').detail).toContain("invalid chmod parameter: '17777'");
  });
  it('reads ADD flags', () => {
    const a = one(
      'ADD --checksum=sha256:24454f830cdb571e2c4ad15481119c43b3cafd48dd869a9b2945d1036d1dc68d --keep-git-dir=true --unpack=false https://example.com/a.tar.gz /x',
      'add',
    );
    expect(a).toMatchObject({ keepGitDir: true, unpack: false, checksum: 'sha256:24454f830cdb571e2c4ad15481119c43b3cafd48dd869a9b2945d1036d1dc68d' });
    expect(error('FROM scratch\nADD --checksum=md5:abc http://x/y /z\n').detail).toContain('invalid checksum digest format');
    expect(error('FROM scratch\nADD --parents a /b\n').detail).toContain('unknown flag: --parents');
    expect(error('FROM scratch\nCOPY --checksum=sha256:00 a /b\n').detail).toContain('unknown flag: --checksum');
  });
  it('reads the JSON form and heredoc sources', () => {
    expect(one('COPY ["a b", "/c d/"]', 'copy')).toMatchObject({ sources: ['a b'], destination: '/c d/', json: true });
    const c = typed('FROM scratch\nCOPY <<A <<-"B" /etc/\nhello $X\nA\n\tliteral\n\tB\n')[1] as CopyInstruction;
    expect(c.sources).toEqual([]);
    expect(c.heredocSources).toEqual([
      { name: 'A', content: 'hello $X\n', expand: true },
      { name: 'B', content: 'literal\n', expand: false },
    ]);
  });
  it('needs a destination', () => {
    expect(error('FROM scratch\nCOPY onlyone\n').detail).toBe('COPY requires at least two arguments, but only one was provided. Destination could not be determined');
  });
  it('formats back to one line', () => {
    const a = one('ADD --link --chown=1:1 a b /c', 'add') as AddInstruction;
    expect(formatInstruction(a)).toBe('ADD --chown=1:1 --link a b /c');
  });
});

describe('VOLUME, USER, WORKDIR, STOPSIGNAL, ONBUILD', () => {
  it('types them', () => {
    expect(one('VOLUME ["/data", "/logs"]', 'volume').volumes).toEqual(['/data', '/logs']);
    expect(one('VOLUME /a /b', 'volume').volumes).toEqual(['/a', '/b']);
    expect(one('USER 1000:1000', 'user').user).toBe('1000:1000');
    expect(one('WORKDIR /app', 'workdir').path).toBe('/app');
    expect(one('STOPSIGNAL SIGTERM', 'stopsignal').signal).toBe('SIGTERM');
    expect(one('STOPSIGNAL 9', 'stopsignal').signal).toBe('9');
  });
  it('rejects wrong argument counts and signals', () => {
    // The parser hands USER the rest of the line as one value, so only a hand-built node has two.
    const node: InstructionNode = { keyword: 'user', original: 'USER', flags: [], args: ['a', 'b'], json: false, heredocs: [], range: { startLine: 4, endLine: 4 } };
    expect(() => parseInstruction(node)).toThrow('Dockerfile:4: USER requires exactly one argument');
    expect(error('FROM scratch\nSTOPSIGNAL SIGFOO\n').detail).toBe('Invalid signal: SIGFOO');
  });
  it('types the ONBUILD trigger and keeps its text', () => {
    const o = one('ONBUILD COPY --chown=1 . /app', 'onbuild');
    expect(o.trigger).toMatchObject({ kind: 'copy', chown: '1', sources: ['.'], destination: '/app' });
    expect(o.expression).toBe('COPY --chown=1 . /app');
    expect(error('FROM scratch\nONBUILD ONBUILD RUN x\n').detail).toBe('Chaining ONBUILD via `ONBUILD ONBUILD` isn\'t allowed');
    expect(error('FROM scratch\nONBUILD FROM alpine\n').detail).toBe("FROM isn't allowed as an ONBUILD trigger");
  });
});

describe('HEALTHCHECK', () => {
  it('reads NONE and CMD with options in nanoseconds', () => {
    expect(one('HEALTHCHECK NONE', 'healthcheck').test).toEqual(['NONE']);
    const h = one('HEALTHCHECK --interval=30s --timeout=1m30s --start-period=500ms --start-interval=2s --retries=3 CMD curl -f http://localhost/', 'healthcheck');
    expect(h).toMatchObject({ test: ['CMD-SHELL', 'curl -f http://localhost/'], interval: 30e9, timeout: 90e9, startPeriod: 5e8, startInterval: 2e9, retries: 3 });
    expect(one('HEALTHCHECK CMD ["true"]', 'healthcheck').test).toEqual(['CMD', 'true']);
  });
  it('rejects bad options', () => {
    expect(error('FROM scratch\nHEALTHCHECK --interval=10 CMD true\n').detail).toBe('time: missing unit in duration "10"');
    expect(error('FROM scratch\nHEALTHCHECK --interval=10us CMD true\n').detail).toBe('Interval "interval" cannot be less than 1ms');
    expect(error('FROM scratch\nHEALTHCHECK --retries=-1 CMD true\n').detail).toBe('--retries cannot be negative (-1)');
    expect(error('FROM scratch\nHEALTHCHECK RUN true\n').detail).toBe('Unknown type "RUN" in HEALTHCHECK (try CMD)');
    expect(error('FROM scratch\nHEALTHCHECK CMD\n').detail).toBe('Missing command after HEALTHCHECK CMD');
    expect(error('FROM scratch\nHEALTHCHECK --foo=1 CMD true\n').detail).toContain('unknown flag: --foo');
  });
  it('parses Go durations', () => {
    expect(parseGoDuration('1h2m3.5s')).toBe(3723.5e9);
    expect(parseGoDuration('0')).toBe(0);
    expect(() => parseGoDuration('abc')).toThrow('time: invalid duration "abc"');
  });
});

describe('unknown instructions and flags', () => {
  it('names the instruction and suggests the closest', () => {
    expect(error('FROM scratch\nCOPPY a b\n')).toMatchObject({ line: 2, detail: 'unknown instruction: COPPY (did you mean COPY?)' });
  });
  it('rejects flags on instructions that take none', () => {
    expect(error('FROM scratch\nUSER --x=1 me\n').detail).toBe('unknown flag: --x (this instruction takes no flags)');
    expect(error('FROM scratch\nCOPY --link=maybe a b\n').detail).toBe('expecting boolean value for flag --link, not: maybe');
  });
  it('works on hand-built nodes', () => {
    const node: InstructionNode = { keyword: 'workdir', original: 'WORKDIR', flags: [], args: ['/w'], json: false, heredocs: [], range: { startLine: 7, endLine: 7 } };
    expect(parseInstruction(node)).toEqual({ kind: 'workdir', keyword: 'WORKDIR', path: '/w', location: { startLine: 7, endLine: 7 } });
  });
});

describe("BuildKit's own instruction cases (frontend/dockerfile/instructions/parse_test.go)", () => {
  function nodeError(text: string): string {
    const node = parseDockerfile(text).instructions[0];
    if (node === undefined) throw new Error('no instruction');
    try {
      parseInstruction(node);
    } catch (err) {
      if (err instanceof DockerfileSyntaxError) return err.detail;
      throw err;
    }
    throw new Error(`no error for ${text}`);
  }
  const hand = (keyword: string, args: string[]): InstructionNode => ({
    keyword, original: keyword.toUpperCase(), flags: [], args, json: false, heredocs: [], range: { startLine: 1, endLine: 1 },
  });

  it.each(['MAINTAINER', 'WORKDIR', 'USER', 'STOPSIGNAL'])('%s needs exactly one argument', (cmd) => {
    expect(nodeError(cmd)).toBe(`${cmd} requires exactly one argument`);
  });
  it.each(['ENV', 'LABEL', 'ONBUILD', 'HEALTHCHECK', 'EXPOSE', 'VOLUME'])('%s needs at least one argument', (cmd) => {
    expect(nodeError(cmd)).toBe(`${cmd} requires at least one argument`);
  });
  it.each(['ADD', 'COPY'])('%s needs a destination', (cmd) => {
    expect(nodeError(`${cmd} arg1`)).toBe(`${cmd} requires at least two arguments, but only one was provided. Destination could not be determined`);
  });
  it.each(['env', 'label'])('%s: too many arguments, blank names', (kw) => {
    expect(() => parseInstruction(hand(kw, ['arg1', 'arg2', 'arg3', '']))).toThrow(`Bad input to ${kw.toUpperCase()}, too many arguments`);
    expect(() => parseInstruction(hand(kw, ['', 'arg2', '=']))).toThrow(`${kw.toUpperCase()} names can not be blank`);
  });
  it('HEALTHCHECK CMD in shell form', () => {
    expect(parseInstruction(hand('healthcheck', ['CMD', 'hello', 'world']))).toMatchObject({ test: ['CMD-SHELL', 'hello world'] });
  });
  it('intervals: 50ns fails, 0ms and 1ms pass', () => {
    expect(nodeError('HEALTHCHECK --interval=50ns CMD true')).toContain('cannot be less than 1ms');
    expect(parseInstruction(parseDockerfile('HEALTHCHECK --interval=0ms CMD true').instructions[0] as InstructionNode)).not.toHaveProperty('interval');
    expect(parseInstruction(parseDockerfile('HEALTHCHECK --interval=1ms CMD true').instructions[0] as InstructionNode)).toMatchObject({ interval: 1e6 });
  });
  it.each([
    ['COPY\t\n\t\tquux \\\n      bar', 'COPY requires at least two arguments'],
    ['ONBUILD FROM scratch', "FROM isn't allowed as an ONBUILD trigger"],
    ['MAINTAINER --boo joe@example.com', 'unknown flag: --boo'],
    ['ONBUILD ONBUILD RUN touch foobar', "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"],
    ['FOO bar', 'unknown instruction: FOO'],
    ['foo bar', 'unknown instruction: foo'],
  ])('error case %#', (text, message) => {
    expect(nodeError(text)).toContain(message);
  });
});

describe('ADD --checksum for git sources', () => {
  it('accepts a commit id only for a git source', () => {
    const commit = 'a'.repeat(40);
    expect(one(`ADD --checksum=${commit} https://github.com/moby/buildkit.git#v0.24.0 /src`, 'add').checksum).toBe(commit);
    expect(one(`ADD --checksum=${commit} git@github.com:moby/buildkit.git /src`, 'add').checksum).toBe(commit);
    expect(error(`FROM scratch\nADD --checksum=${commit} https://example.com/a.tgz /x\n`).detail).toContain('invalid checksum digest format');
    expect(error('FROM scratch\nADD --checksum=sha256:' + 'b'.repeat(64) + ' a b /x\n').detail).toBe("checksum can't be specified for multiple sources");
  });
});
