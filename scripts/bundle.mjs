// Bundles each entry point into one self-contained ESM file under dist/.
import { copyFile } from 'node:fs/promises';
import { build } from 'esbuild';

const entryPoints = {
  cli: 'src/cli/main.ts',
  'github-main': 'src/ci/github/main.ts',
  'github-post': 'src/ci/github/post.ts',
  'azure-main': 'src/ci/azure/main.ts',
  'gitlab-main': 'src/ci/gitlab/main.ts',
};

await build({
  entryPoints,
  outdir: 'dist',
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  sourcemap: false,
  legalComments: 'none',
  logLevel: 'warning',
  // Bundled CommonJS dependencies call require(); ESM output has none unless we make one.
  banner: { js: "import { createRequire as __kilnCreateRequire } from 'node:module'; const require = __kilnCreateRequire(import.meta.url);" },
});

// An Azure Pipelines task is packaged from its own folder, so the task's bundle lives beside task.json too.
await copyFile('dist/azure-main.js', 'azure/azure-main.js');
