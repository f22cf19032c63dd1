/**
 * Bundles entry points with the options of scripts/bundle.mjs into a directory of the test's own,
 * so an end-to-end test runs the code of this tree even when dist/ is stale or lacks an entry.
 */
import path from 'node:path';
import { build } from 'esbuild';

const repositoryRoot = path.resolve(import.meta.dirname, '../..');

/** `entries` maps an output name (`cli` → `cli.js`) to a source path relative to the repository. */
export async function bundleEntries(outdir: string, entries: Readonly<Record<string, string>>): Promise<void> {
  await build({
    absWorkingDir: repositoryRoot,
    entryPoints: { ...entries },
    outdir,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'esm',
    legalComments: 'none',
    logLevel: 'warning',
    banner: { js: "import { createRequire as __kilnCreateRequire } from 'node:module'; const require = __kilnCreateRequire(import.meta.url);" },
  });
}
