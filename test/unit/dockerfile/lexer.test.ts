/** Lexer behaviour beyond the upstream vectors: the backtick escape, options, quirks, errors. */
import { describe, expect, it } from 'vitest';
import { createShellLexer, ShellExpansionError, type EnvLookup } from '../../../src/dockerfile/shell-lexer.js';

const env =
  (vars: Record<string, string>): EnvLookup =>
  (name) =>
    Object.hasOwn(vars, name) ? vars[name] : undefined;

describe('shell lexer', () => {
  it('uses the backtick as escape token after `# escape=`', () => {
    const lexer = createShellLexer('`');
    expect(lexer.processWord('C:\\dir `$X', env({ X: 'y' }))).toBe('C:\\dir $X');
    expect(lexer.processWord('"a`"b"', env({}))).toBe('a"b');
    expect(lexer.processWords('a` b c', env({}))).toEqual(['a b', 'c']);
  });

  it('splits words on whitespace from variable values but not from quoted text', () => {
    const lexer = createShellLexer('\\');
    expect(lexer.processWords('80/tcp $PORTS', env({ PORTS: '443  8080/udp' }))).toEqual(['80/tcp', '443', '8080/udp']);
    expect(lexer.processWords('"$PORTS"', env({ PORTS: '443 8080' }))).toEqual(['443 8080']);
  });

  it("keeps BuildKit's word-buffer reset in processWords for modifier expansions", () => {
    const lexer = createShellLexer('\\');
    expect(lexer.processWords('hello${XXX:-abc}', env({}))).toEqual(['abc']);
    expect(lexer.processWord('hello${XXX:-abc}', env({}))).toBe('helloabc');
    expect(lexer.processWords('a b${X:-c}', env({}))).toEqual(['a', 'c']);
  });

  it('replaces with Go regexp semantics: non-overlapping, templates in the replacement', () => {
    const lexer = createShellLexer('\\');
    const e = env({ V: 'abcabc', E: 'abc' });
    expect(lexer.processWord('${V//b/X}', e)).toBe('aXcaXc');
    expect(lexer.processWord('${V/b*/X}', e)).toBe('aX');
    expect(lexer.processWord('${E///-}', e)).toBe('-a-b-c-');
    expect(lexer.processWord('${E//*/-}', e)).toBe('-');
    expect(lexer.processWord('${E//b*/-}', e)).toBe('a-');
    // the replacement keeps its escapes; Go then reads `$0` in it as the whole match (replace-all only)
    expect(lexer.processWord('${E/b/[$0|\\$x]}', e)).toBe('a[|\\$x]c');
    expect(lexer.processWord('${E//b/[\\$0|\\$$]}', e)).toBe('a[\\b|\\$]c');
    expect(lexer.processWord('${V%%b*}', e)).toBe('a');
    expect(lexer.processWord('${V%b*}', e)).toBe('abca');
    expect(lexer.processWord('${V##*b}', e)).toBe('c');
    expect(lexer.processWord('${V#*b}', e)).toBe('cabc');
  });

  it('can leave unset variables and quotes as written (heredoc detection)', () => {
    const lexer = createShellLexer('\\', { skipUnsetEnv: true, rawQuotes: true, rawEscapes: true });
    expect(lexer.processWords(`RUN <<'EOF' $A \${B:-x} \\"`, env({ A: 'set' }))).toEqual([
      'RUN',
      "<<'EOF'",
      'set',
      '${B:-x}',
      '\\"',
    ]);
  });

  it('reports which variables it looked up', () => {
    const r = createShellLexer('\\').processWordWithMatches('$A ${B:-$C} ${D+x}', env({ A: '1', D: '' }));
    expect(r.result).toBe('1  x');
    expect([...r.matched].sort()).toEqual(['A', 'D']);
    expect([...r.unmatched].sort()).toEqual(['B', 'C']);
  });

  it('names the word and the reason in errors', () => {
    const lexer = createShellLexer('\\');
    const fail = (word: string): ShellExpansionError => {
      try {
        lexer.processWord(word, env({}));
      } catch (err) {
        if (err instanceof ShellExpansionError) return err;
        throw err;
      }
      throw new Error('expansion succeeded');
    };
    expect(fail('${}').message).toBe('failed to process "${}": syntax error: bad substitution');
    expect(fail('${X:?must be set}').reason).toBe('X: must be set');
    expect(fail('${X:=y}').reason).toBe('unsupported modifier (:=) in substitution');
    expect(fail('${X/a}').reason).toBe("syntax error: missing '/' in ${}");
    expect(fail('"abc').reason).toBe('unexpected end of statement while looking for matching double-quote');
    expect(fail('${X#\\a}').reason).toContain('invalid escape');
  });
});
