/** The parser's behaviour beyond the upstream corpus: directives, errors, heredocs, ranges. */
import { describe, expect, it } from 'vitest';
import { DockerfileSyntaxError } from '../../../src/dockerfile/ast.js';
import { parseDockerfile } from '../../../src/dockerfile/parser.js';
import { dumpDockerfile } from './dump.js';

const errorOf = (text: string, file = 'Dockerfile'): DockerfileSyntaxError => {
  try {
    parseDockerfile(text, file);
  } catch (err) {
    if (err instanceof DockerfileSyntaxError) return err;
    throw err;
  }
  throw new Error('parse succeeded');
};

describe('parser directives', () => {
  it('reads syntax, check and escape at the top, case-insensitively, after a BOM', () => {
    const df = parseDockerfile('\uFEFF# syntax=docker/dockerfile:1\n# CHECK = skip=all\n#Escape=`\nFROM a `\n  AS b\n');
    expect(df.directives).toEqual({ escape: '`', syntax: 'docker/dockerfile:1', check: 'skip=all' });
    expect(dumpDockerfile(df)).toBe('(from "a" "AS" "b")\n');
  });

  it('ignores directives after a blank line, another comment or an instruction', () => {
    expect(parseDockerfile('\n# escape=`\nFROM a\n').directives.escape).toBe('\\');
    expect(parseDockerfile('# hello\n# escape=`\nFROM a\n').directives.escape).toBe('\\');
    expect(parseDockerfile('FROM a\n# escape=`\nRUN x\n').directives.escape).toBe('\\');
  });

  it('rejects a repeated directive and an invalid escape, with their line', () => {
    const repeated = errorOf('# escape=\\\n# ESCAPE=`\nFROM a\n', 'ci/Dockerfile');
    expect(repeated.message).toBe('ci/Dockerfile:2: only one escape parser directive can be used');
    expect(repeated.file).toBe('ci/Dockerfile');
    expect(repeated.line).toBe(2);
    expect(errorOf('# escape=x\nFROM a\n').message).toBe("Dockerfile:1: invalid escape token 'x' does not match ` or \\");
  });
});

describe('lines and continuations', () => {
  it('keeps continuation indentation, drops comments inside a continuation and ranges cover them', () => {
    const df = parseDockerfile('FROM a\nRUN one \\\n# note\n    two \\\n\n  three\nCMD x\n');
    expect(df.instructions.map((n) => n.args)).toEqual([['a'], ['one     two   three'], ['x']]);
    expect(df.instructions.map((n) => [n.range.startLine, n.range.endLine])).toEqual([[1, 1], [2, 6], [7, 7]]);
    expect(df.warnings).toEqual([{ message: 'Empty continuation line found in: RUN one     two   three', range: { startLine: 6, endLine: 6 } }]);
    expect(df.instructions[1]?.text).toBe('RUN one     two   three');
  });

  it('does not continue a line ending in a doubled escape, and a continuation at EOF ends the instruction', () => {
    const df = parseDockerfile('FROM a\nRUN echo \\\\\nRUN b \\');
    expect(df.instructions.map((n) => n.args)).toEqual([['a'], ['echo \\\\'], ['b']]);
  });

  it('trims and splits like Go: Unicode spaces trim the line, only ASCII blanks split arguments', () => {
    const df = parseDockerfile('\u3000FROM a\u00a0b\u2003\nEXPOSE 80\v443\n');
    expect(df.instructions.map((n) => n.args)).toEqual([['a\u00a0b'], ['80', '443']]);
  });

  it('handles CRLF files', () => {
    const df = parseDockerfile('FROM a\r\nRUN x \\\r\n  y\r\n');
    expect(dumpDockerfile(df)).toBe('(from "a")\n(run "x   y")\n');
  });

  it('rejects a file with no instructions and too long a line, located', () => {
    expect(errorOf('# just a comment\n\n').message).toBe('Dockerfile:2: file with no instructions');
    expect(errorOf('').message).toBe('Dockerfile:1: file with no instructions');
    expect(errorOf(`FROM a\nLABEL a=${'é'.repeat(40000)}\n`).message).toBe(
      'Dockerfile:2: dockerfile line greater than max allowed size of 65535',
    );
  });
});

describe('instruction arguments', () => {
  it('splits flags (quotes removed, bare -- ends them) and keeps the rest', () => {
    const df = parseDockerfile('FROM a\nCOPY --chown="a b" --from=x -- --weird /d\nRUN --mount=type=cache,target=/c make\n');
    expect(df.instructions[1]).toMatchObject({ keyword: 'copy', flags: ['--chown=a b', '--from=x'], args: ['--weird', '/d'] });
    expect(df.instructions[2]).toMatchObject({ flags: ['--mount=type=cache,target=/c'], args: ['make'], json: false });
  });

  it('tells exec form from shell form', () => {
    const df = parseDockerfile('FROM a\nCMD ["a", "b c"]\nCMD [a, b]\nSHELL ["/bin/sh", "-c"]\nHEALTHCHECK --interval=5s CMD ["x"]\nVOLUME /a /b\n');
    expect(df.instructions.slice(1).map((n) => [n.json, n.args])).toEqual([
      [true, ['a', 'b c']],
      [false, ['[a, b]']],
      [true, ['/bin/sh', '-c']],
      [true, ['CMD', 'x']],
      [false, ['/a', '/b']],
    ]);
  });

  it('rejects a JSON array of non-strings and ENV without a value, at the instruction line', () => {
    expect(errorOf('FROM a\nRUN x\nENTRYPOINT ["a", 1]\n').message).toBe(
      'Dockerfile:3: when using JSON array syntax, arrays must be comprised of strings only',
    );
    expect(errorOf('FROM a\nENV \\\n  PATH\n').message).toBe('Dockerfile:2: ENV must have two arguments');
    expect(errorOf('FROM a\nLABEL a=b c\n').message).toContain('Dockerfile:2: Syntax error - can\'t find = in "c"');
  });

  it('keeps quotes in ENV, LABEL and ARG values for the expansion step', () => {
    const df = parseDockerfile('FROM a\nENV A="x y" B=z\nENV LEGACY value with  spaces\nARG V="1 2" W\nLABEL "k"=\'v\'\n');
    expect(df.instructions.slice(1).map((n) => n.args)).toEqual([
      ['A', '"x y"', '=', 'B', 'z', '='],
      ['LEGACY', 'value with  spaces', ''],
      ['V="1 2"', 'W'],
      ['"k"', "'v'", '='],
    ]);
  });

  it('nests ONBUILD and keeps unknown keywords for the instruction layer to reject', () => {
    const df = parseDockerfile('FROM a\nonbuild COPY --from=b x y\nFOO bar\n');
    expect(df.instructions[1]).toMatchObject({ keyword: 'onbuild', original: 'onbuild', args: [] });
    expect(df.instructions[1]?.next).toMatchObject({ keyword: 'copy', flags: ['--from=b'], args: ['x', 'y'], text: 'COPY --from=b x y' });
    expect(dumpDockerfile(df)).toBe('(from "a")\n(onbuild (copy ["--from=b"] "x" "y"))\n(foo "")\n');
  });
});

describe('heredocs', () => {
  it('reads bodies for RUN, COPY and ONBUILD RUN, in order, and the range covers them', () => {
    const df = parseDockerfile('FROM a\nCOPY <<A 3<<-"B" /dst\none\nA\n\ttwo $X\n\tB\nONBUILD RUN <<EOF\nhi\nEOF\nRUN ["<<EOF"]\n');
    const [, copy, onbuild, json] = df.instructions;
    expect(copy?.heredocs).toEqual([
      { name: 'A', content: 'one\n', expand: true, chomp: false, fileDescriptor: 0 },
      { name: 'B', content: '\ttwo $X\n', expand: false, chomp: true, fileDescriptor: 3 },
    ]);
    expect(copy?.range).toEqual({ startLine: 2, endLine: 6 });
    expect(onbuild?.heredocs.map((h) => h.content)).toEqual(['hi\n']);
    expect(json?.heredocs).toEqual([]);
    expect(json?.range).toEqual({ startLine: 10, endLine: 10 });
  });

  it('keeps CR in bodies of CRLF files but matches the terminator without it', () => {
    const df = parseDockerfile('FROM a\r\nRUN <<EOF\r\nx\r\nEOF\r\n');
    expect(df.instructions[1]?.heredocs[0]?.content).toBe('x\r\n');
  });

  it('does not read heredocs for other instructions', () => {
    const df = parseDockerfile('FROM a\nUSER <<X\nX\n');
    expect(df.instructions.map((n) => n.keyword)).toEqual(['from', 'user', 'x']);
  });

  it('reports an unterminated heredoc at its instruction', () => {
    expect(errorOf('FROM a\nRUN <<EOF\necho\n').message).toMatch(/^Dockerfile:2: unterminated heredoc EOF/);
    // as in BuildKit, a line the lexer cannot split opens no heredoc: RUN gets it as a shell command
    expect(parseDockerfile("FROM a\nRUN <<'EOF\n").instructions[1]).toMatchObject({ args: ["<<'EOF"], heredocs: [] });
  });
});
