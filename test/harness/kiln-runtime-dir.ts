/**
 * A kiln runtime directory made from the host, laid out like the executor image's /kiln
 * (images/executor/collect-runtime.sh): the dynamic loader as lib/ld.so, util-linux's setpriv in
 * bin/ and the libraries it links in lib/, so tools start through the loader alone.
 */
import { copyFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { runTool } from './process.js';

export async function makeKilnRuntimeDir(dir: string): Promise<string> {
  await mkdir(path.join(dir, 'bin'), { recursive: true });
  await mkdir(path.join(dir, 'lib'), { recursive: true });
  const { stdout } = await runTool('ldd', ['/usr/bin/setpriv']);
  for (const line of stdout.split('\n')) {
    const library = /=>\s+(\/\S+)/.exec(line)?.[1];
    if (library !== undefined) await copyFile(library, path.join(dir, 'lib', path.basename(library)));
    const loader = /^\s*(\/\S*ld-linux\S*)\s/.exec(line)?.[1];
    if (loader !== undefined) await copyFile(loader, path.join(dir, 'lib', 'ld.so'));
  }
  await copyFile('/usr/bin/setpriv', path.join(dir, 'bin', 'setpriv'));
  return dir;
}
