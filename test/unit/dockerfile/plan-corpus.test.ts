/**
 * BuildKit's parser corpus run through typing and planning: every file either plans or fails with a
 * located DockerfileSyntaxError, and the failures are the ones BuildKit would also refuse to build.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { DockerfileSyntaxError } from '../../../src/dockerfile/ast.js';
import { parseDockerfile } from '../../../src/dockerfile/parser.js';
import { planBuild } from '../../../src/dockerfile/plan.js';

const dir = fileURLToPath(new URL('../../fixtures/corpora/dockerfile-parser/testfiles/', import.meta.url));

/** Cases that are parser vectors only, with why a build must fail on them. */
const refused: Record<string, string> = {
  env: "ENV value 'a\\'b' has an unterminated single quote once the shell lexer runs",
  escapes: 'an ENV value ends inside an unterminated double quote',
  flags: 'made-up flags (--user, --doit) that no instruction accepts',
  health: 'HEALTHCHECK without arguments, without a command, and of type CONNECT',
  'jeztah-invalid-json-json-inside-string': 'CMD before any FROM',
  'jeztah-invalid-json-json-inside-string-double': 'CMD before any FROM',
  'jeztah-invalid-json-single-quotes': 'CMD before any FROM',
  'jeztah-invalid-json-unterminated-bracket': 'CMD before any FROM',
  'jeztah-invalid-json-unterminated-string': 'CMD before any FROM',
  json: 'CMD before any FROM',
};

describe('the parser corpus through planBuild', () => {
  for (const name of readdirSync(dir).sort()) {
    it(name, () => {
      const text = readFileSync(`${dir}${name}/Dockerfile`, 'utf8');
      const run = () =>
        planBuild(parseDockerfile(text, 'Dockerfile'), {
          file: 'Dockerfile',
          buildArgs: {},
          platform: { os: 'linux', architecture: 'amd64' },
          buildPlatform: { os: 'linux', architecture: 'amd64' },
          skipUnusedStages: false,
        });
      if (name in refused) {
        expect(run).toThrow(DockerfileSyntaxError);
      } else {
        const p = run();
        expect(p.order.length).toBeGreaterThan(0);
        expect(JSON.parse(JSON.stringify(p))).toEqual(p);
      }
    });
  }
});
