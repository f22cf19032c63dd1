import { describe, expect, it } from 'vitest';
import { compileFileMode } from '../../../src/build/copy/chmod.js';
import { FileModeError } from '../../../src/build/copy/errors.js';

const sym = (expression: string, mode: number, dir = false): string =>
  compileFileMode({ kind: 'symbolic', expression })(mode, dir).toString(8).padStart(4, '0');

describe('--chmod', () => {
  it('octal replaces the permission bits whatever the file had', () => {
    expect(compileFileMode({ kind: 'octal', mode: 0o4755 })(0o100600, false)).toBe(0o4755);
  });

  it('applies symbolic clauses like chmod(1), in order', () => {
    expect(sym('u+x', 0o644)).toBe('0744');
    expect(sym('g-w,o-rwx', 0o775)).toBe('0750');
    expect(sym('a=r', 0o777)).toBe('0444');
    expect(sym('=rw', 0o000)).toBe('0666');
    expect(sym('+x', 0o600)).toBe('0711');
    expect(sym('go=u', 0o750)).toBe('0777');
    expect(sym('u=rwx,g=rx,o=', 0o000)).toBe('0750');
    expect(sym('u+s,g+s', 0o755)).toBe('6755');
    expect(sym('+t', 0o777, true)).toBe('1777');
    expect(sym('u-w+x', 0o644)).toBe('0544');
  });

  it('X adds execute only for directories and files something may already execute', () => {
    expect(sym('a+X', 0o644, false)).toBe('0644');
    expect(sym('a+X', 0o644, true)).toBe('0755');
    expect(sym('a+X', 0o744, false)).toBe('0755');
  });

  it('refuses what is not a clause', () => {
    expect(() => compileFileMode({ kind: 'symbolic', expression: 'u+q' })).toThrow(FileModeError);
  });
});
