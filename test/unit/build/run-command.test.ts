import { describe, expect, it } from 'vitest';
import { parseDockerfile } from '../../../src/dockerfile/parser.js';
import { parseInstruction, type RunInstruction } from '../../../src/dockerfile/instructions.js';
import { environmentOf, goQuotedList, runCommand, runHistory } from '../../../src/build/run-command.js';

function run(text: string): RunInstruction {
  const node = parseDockerfile(`FROM scratch\n${text}\n`).instructions[1];
  if (!node) throw new Error('no RUN');
  const instruction = parseInstruction(node);
  if (instruction.kind !== 'run') throw new Error('not a RUN');
  return instruction;
}

describe('RUN command lines', () => {
  it('runs shell form through SHELL and exec form as given', () => {
    expect(runCommand(run('RUN echo $HOME'), undefined, '/s').argv).toEqual(['/bin/sh', '-c', 'echo $HOME']);
    expect(runCommand(run('RUN echo hi'), ['/bin/bash', '-c'], '/s').argv).toEqual(['/bin/bash', '-c', 'echo hi']);
    expect(runCommand(run('RUN ["echo", "a b"]'), undefined, '/s').argv).toEqual(['echo', 'a b']);
  });

  it('runs a lone heredoc body through the shell, chomping <<-', () => {
    expect(runCommand(run('RUN <<EOF\necho one\necho two\nEOF'), undefined, '/s').argv).toEqual(['/bin/sh', '-c', 'echo one\necho two\n']);
    expect(runCommand(run('RUN <<-EOF\n\techo tab\n\tEOF'), undefined, '/s').argv).toEqual(['/bin/sh', '-c', 'echo tab\n']);
  });

  it('executes a heredoc with a shebang as a file', () => {
    const command = runCommand(run('RUN <<EOF\n#!/usr/bin/env python3\nprint(1)\nEOF'), undefined, '/.kiln-run');
    expect(command.argv).toEqual(['/.kiln-run/EOF']);
    expect(command.script).toEqual({ name: '/.kiln-run/EOF', content: '#!/usr/bin/env python3\nprint(1)\n' });
  });

  it('hands the shell the whole text when heredocs feed a command', () => {
    const command = runCommand(run('RUN cat <<EOF > /greeting\nhello\nEOF'), undefined, '/s');
    expect(command.argv).toEqual(['/bin/sh', '-c', 'cat <<EOF > /greeting\nhello\nEOF']);
  });

  it('writes history like BuildKit', () => {
    expect(runHistory(['/bin/sh', '-c', 'make'], ['A=1', 'B=two'])).toBe('RUN |2 A=1 B=two /bin/sh -c make # buildkit');
    expect(runHistory(['echo'], [])).toBe('RUN echo # buildkit');
    expect(goQuotedList(['cat', '/a b'])).toBe('["cat" "/a b"]');
    expect(environmentOf(['A=1', 'B=x=y', 'A=2'])).toEqual({ A: '2', B: 'x=y' });
  });
});
