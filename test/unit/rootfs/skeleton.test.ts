import { lstat, mkdtemp, readFile, readlink, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { applyLayer } from '../../../src/rootfs/unpack.js';
import { makeTar } from '../../harness/test-layers.js';

describe('unpacking a skeleton (keepContent)', () => {
  it('lays out every path with its type and mode, and writes only the contents asked for', async () => {
    const root = await mkdtemp(path.join(os.tmpdir(), 'kiln-skeleton-'));
    try {
      const tar = await makeTar([
        { name: 'etc/', type: 'directory', mode: 0o755 },
        { name: 'etc/passwd', content: 'root:x:0:0::/root:/bin/sh\n', mode: 0o644 },
        { name: 'usr/bin/tool', content: 'binary bytes', mode: 0o4755 },
        { name: 'usr/link', type: 'symlink', linkname: 'bin' },
      ]);
      await applyLayer(root, Readable.from([tar]), { layerName: 'test', keepContent: (p) => p === 'etc/passwd' });
      expect(await readFile(path.join(root, 'etc/passwd'), 'utf8')).toBe('root:x:0:0::/root:/bin/sh\n');
      const tool = await lstat(path.join(root, 'usr/bin/tool'));
      expect(tool.size).toBe(0);
      expect(tool.mode & 0o7777).toBe(0o4755);
      expect(await readlink(path.join(root, 'usr/link'))).toBe('bin');
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
