/**
 * A kiln runtime directory made from the host, laid out like the executor image's /kiln
 * (images/executor/collect-runtime.sh): the dynamic loader as lib/ld.so, util-linux's setpriv in
 * bin/ and the libraries it links in lib/, so tools start through the loader alone.
 */
import { copyFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { sharedLibraries } from './node-runtime-image.js';

export async function makeKilnRuntimeDir(dir: string): Promise<string> {
  await mkdir(path.join(dir, 'bin'), { recursive: true });
  await mkdir(path.join(dir, 'lib'), { recursive: true });
  const { loader, libraries } = await sharedLibraries('/usr/bin/setpriv');
  await copyFile(loader, path.join(dir, 'lib', 'ld.so'));
  for (const library of libraries) await copyFile(library, path.join(dir, 'lib', path.basename(library)));
  await copyFile('/usr/bin/setpriv', path.join(dir, 'bin', 'setpriv'));
  return dir;
}
