// Walking a 100k-file build context: kiln's walk (with a realistic .dockerignore, and with none)
// against `tar -cf /dev/null` of the same tree, in the same invocation.
// Run: npx tsx bench/context-walk.ts [fileCount]
import { spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { IgnoreMatcher } from '../src/context/dockerignore.js';
import { walkContext } from '../src/context/walk.js';

const total = Number(process.argv[2] ?? 100_000);
const root = mkdtempSync(join(tmpdir(), 'kiln-bench-walk-'));

const DOCKERIGNORE = `# a typical Node/Go monorepo .dockerignore
.git
**/node_modules
!packages/app/node_modules/keep-me
*.log
**/*.tmp
coverage
dist/**
!dist/public
.env*
**/__pycache__
`;

function makeTree(): number {
  // src: 60% of the files, node_modules (ignored): 30%, misc ignored: 10%.
  let made = 0;
  const put = (dir: string, count: number, ext: string): void => {
    mkdirSync(dir, { recursive: true });
    for (let i = 0; i < count && made < total; i++, made++) writeFileSync(join(dir, `f${i}${ext}`), 'x');
  };
  const perDir = 100;
  const srcDirs = Math.ceil((total * 0.6) / perDir);
  for (let d = 0; d < srcDirs; d++) put(join(root, 'packages', `p${d % 20}`, 'src', `m${d}`), perDir, d % 10 === 0 ? '.tmp' : '.ts');
  const nmDirs = Math.ceil((total * 0.3) / perDir);
  for (let d = 0; d < nmDirs; d++) put(join(root, 'packages', `p${d % 20}`, 'node_modules', `dep${d}`, 'lib'), perDir, '.js');
  const gitDirs = Math.ceil((total * 0.05) / perDir);
  for (let d = 0; d < gitDirs; d++) put(join(root, '.git', 'objects', `o${d}`), perDir, '');
  while (made < total) put(join(root, 'dist', `chunk${made}`), perDir, '.js');
  writeFileSync(join(root, '.dockerignore'), DOCKERIGNORE);
  return made;
}

function timeTar(): number {
  const start = performance.now();
  const result = spawnSync('tar', ['-cf', '/dev/null', '-C', root, '.'], { stdio: ['ignore', 'ignore', 'pipe'] });
  if (result.status !== 0) throw new Error(`tar failed: ${result.stderr.toString()}`);
  return performance.now() - start;
}

async function timeWalk(ignore: IgnoreMatcher): Promise<{ ms: number; entries: number }> {
  const start = performance.now();
  const entries = await walkContext(root, ignore);
  return { ms: performance.now() - start, entries: entries.length };
}

try {
  const files = makeTree();
  const ignore = IgnoreMatcher.fromText(DOCKERIGNORE);
  // One warm-up pass each so both read a warm dentry cache.
  timeTar();
  await timeWalk(ignore);
  const runs = 3;
  let tarBest = Infinity;
  let walkBest = Infinity;
  let walkAllBest = Infinity;
  let kept = 0;
  let all = 0;
  for (let i = 0; i < runs; i++) {
    tarBest = Math.min(tarBest, timeTar());
    const w = await timeWalk(ignore);
    walkBest = Math.min(walkBest, w.ms);
    kept = w.entries;
    const a = await timeWalk(IgnoreMatcher.empty());
    walkAllBest = Math.min(walkAllBest, a.ms);
    all = a.entries;
  }
  console.log(`tree: ${files} files under ${root}`);
  console.log(`tar -cf /dev/null               : ${tarBest.toFixed(0)} ms`);
  console.log(`kiln walk, realistic ignore     : ${walkBest.toFixed(0)} ms (${kept} entries kept)  ratio ${(walkBest / tarBest).toFixed(2)}x`);
  console.log(`kiln walk, no .dockerignore     : ${walkAllBest.toFixed(0)} ms (${all} entries, all stat'ed)  ratio ${(walkAllBest / tarBest).toFixed(2)}x`);
} finally {
  rmSync(root, { recursive: true, force: true });
}
