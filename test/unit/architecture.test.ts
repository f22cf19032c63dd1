import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

/** Who may import whom (../shared/ARCHITECTURE.md): data flows one way. */
const allowed: Record<string, readonly string[]> = {
  image: [],
  registry: ['image'],
  layout: ['image'],
  dockerfile: [],
  context: [],
  rootfs: ['image'],
  snapshot: ['rootfs'],
  layer: ['image', 'rootfs', 'snapshot'],
  sandbox: ['rootfs'],
  cache: ['image', 'registry', 'layout'],
  build: ['image', 'registry', 'layout', 'dockerfile', 'context', 'rootfs', 'snapshot', 'layer', 'sandbox', 'cache'],
  copy: ['image', 'registry', 'layout'],
  cli: ['build', 'registry', 'image', 'copy', 'dockerfile', 'context', 'layout'],
  ci: ['build', 'registry', 'image', 'cli'],
};

const srcRoot = join(import.meta.dirname, '..', '..', 'src');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

describe('module boundaries', () => {
  it('every import between src/ folders follows the table', () => {
    const violations: string[] = [];
    for (const file of sourceFiles(srcRoot)) {
      const from = relative(srcRoot, file).split('/')[0] ?? '';
      const text = readFileSync(file, 'utf8');
      for (const match of text.matchAll(/from\s+'(\.\.\/[^']+)'/g)) {
        const target = relative(srcRoot, join(file, '..', match[1] ?? '')).split('/')[0] ?? '';
        if (target === from || target.startsWith('..')) continue;
        const permitted = allowed[from];
        if (permitted === undefined) violations.push(`${relative(srcRoot, file)}: folder src/${from} is not in the table`);
        else if (!permitted.includes(target)) violations.push(`${relative(srcRoot, file)} imports src/${target}`);
      }
    }
    expect(violations).toEqual([]);
  });
});
