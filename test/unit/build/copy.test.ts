import { lstat, mkdir, readFile, stat, symlink, writeFile, link } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { IgnoreMatcher, parseDockerignore } from '../../../src/context/dockerignore.js';
import { copyIntoRoot, CopyError, SourceNotFoundError, type CopyIntoRootOptions } from '../../../src/build/copy/index.js';
import { createReadStream } from 'node:fs';
import zlib from 'node:zlib';
import tarStream from 'tar-stream';
import { writeLayer } from '../../../src/layer/write-layer.js';
import { describeTree, instruction, makeTree, tempDir } from './copy-helpers.js';

let context: string;
let dest: string;
let outside: string;
let cleanups: Array<() => Promise<void>>;

beforeEach(async () => {
  cleanups = [];
  for (const name of ['context', 'dest', 'outside'] as const) {
    const t = await tempDir();
    cleanups.push(t.cleanup);
    if (name === 'context') context = t.dir;
    else if (name === 'dest') dest = t.dir;
    else outside = t.dir;
  }
});

afterEach(async () => {
  for (const c of cleanups) await c();
});

async function run(text: string, extra: Partial<CopyIntoRootOptions> = {}) {
  return copyIntoRoot({ instruction: instruction(text), sourceRoot: context, destRoot: dest, workdir: '/', ...extra });
}

async function failure(text: string, extra: Partial<CopyIntoRootOptions> = {}): Promise<Error> {
  try {
    await run(text, extra);
  } catch (error) {
    return error as Error;
  }
  throw new Error(`expected ${text} to fail`);
}

describe('destination rules', () => {
  beforeEach(async () => {
    await makeTree(context, { 'a.txt': 'A', 'dir/x': 'X', 'dir/sub/y': 'Y' });
  });

  it('puts a file into dest/ and makes a file of dest without a slash', async () => {
    await run('COPY a.txt /into/');
    await run('COPY a.txt /as/file');
    const tree = await describeTree(dest);
    expect(tree['into']).toMatchObject({ type: 'dir', mode: '0755', owner: '0:0' });
    expect(tree['into/a.txt']).toMatchObject({ type: 'file', content: 'A', mode: '0644', owner: '0:0' });
    expect(tree['as/file']).toMatchObject({ type: 'file', content: 'A' });
  });

  it('puts a file into an existing directory even without a slash', async () => {
    await makeTree(dest, { existing: { dir: true } });
    await run('COPY a.txt /existing');
    expect((await describeTree(dest))['existing/a.txt']?.content).toBe('A');
  });

  it('copies the contents of a directory, not the directory itself', async () => {
    await run('COPY dir /d1');
    const tree = await describeTree(dest);
    expect(Object.keys(tree).sort()).toEqual(['d1', 'd1/sub', 'd1/sub/y', 'd1/x']);
  });

  it('gives a directory it creates from a source directory that directory\'s mode; dest/ is made 0755', async () => {
    await makeTree(context, { 'private/f': 'F' });
    await (await import('node:fs/promises')).chmod(path.join(context, 'private'), 0o700);
    await run('COPY private /nodash');
    await run('COPY private /dash/');
    const tree = await describeTree(dest);
    expect(tree['nodash']?.mode).toBe('0700');
    expect(tree['dash']?.mode).toBe('0755');
  });

  it('resolves a relative destination against WORKDIR', async () => {
    await run('COPY a.txt rel/', { workdir: '/app' });
    await run('COPY a.txt .', { workdir: '/app2' });
    const tree = await describeTree(dest);
    expect(tree['app/rel/a.txt']?.content).toBe('A');
    expect(tree['app2/a.txt']?.content).toBe('A');
  });

  it('needs a directory destination for several sources', async () => {
    await makeTree(context, { 'b.txt': 'B' });
    const error = await failure('COPY a.txt b.txt /notdir');
    expect(error).toBeInstanceOf(CopyError);
    expect(error.message).toContain('must be a directory and end with a /');
    await makeTree(dest, { isdir: { dir: true } });
    await run('COPY a.txt b.txt /isdir');
    await run('COPY *.txt /withslash/');
    expect(Object.keys(await describeTree(dest)).sort()).toEqual(['isdir', 'isdir/a.txt', 'isdir/b.txt', 'withslash', 'withslash/a.txt', 'withslash/b.txt']);
  });

  it('refuses to put a file where a directory is, and a directory onto a file', async () => {
    await makeTree(dest, { 'd1/sub': 'a file in the way' });
    expect((await failure('COPY dir /d1')).message).toContain('cannot copy to non-directory');
  });

  it('keeps mtimes of copied files and directories', async () => {
    await makeTree(context, { 'old/f': { content: 'f', mtime: 1_000_000_000 } });
    await (await import('node:fs/promises')).utimes(path.join(context, 'old'), 1_100_000_000, 1_100_000_000);
    await run('COPY old /old');
    expect(Math.floor((await stat(path.join(dest, 'old/f'))).mtimeMs / 1000)).toBe(1_000_000_000);
    expect(Math.floor((await stat(path.join(dest, 'old'))).mtimeMs / 1000)).toBe(1_100_000_000);
  });
});

describe('source selection', () => {
  it('matches globs with Go filepath.Match, including the [[] escape', async () => {
    await makeTree(context, { 'arr[0].txt': 'zero', 'a1.txt': '1', 'a2.md': '2', 'sub/a3.txt': '3' });
    await run("COPY arr[[]0].txt /esc/");
    await run('COPY a?.txt */*.txt /glob/');
    const tree = await describeTree(dest);
    expect(tree['esc/arr[0].txt']?.content).toBe('zero');
    expect(Object.keys(tree).filter((p) => p.startsWith('glob/')).sort()).toEqual(['glob/a1.txt', 'glob/a3.txt']);
  });

  it('fails on a missing plain path, naming it and the line', async () => {
    const error = await failure('COPY missing.txt /x');
    expect(error).toBeInstanceOf(SourceNotFoundError);
    expect(error.message).toMatch(/COPY \(line 2\).*"\/missing\.txt": not found/);
  });

  it('lets wildcards match nothing (BuildKit, not the classic builder), unless their directory is missing', async () => {
    await makeTree(context, { 'package.json': '{}', 'empty': { dir: true } });
    const none = await run('COPY nothing*.txt empty/*.sql /x/');
    expect(none.changes.changes).toEqual([]);
    expect(await describeTree(dest)).toEqual({});
    await run('COPY package.json yarn.loc[k] /app/');
    expect(Object.keys(await describeTree(dest))).toEqual(['app', 'app/package.json']);
    const error = await failure('COPY missingdir/*.sql /x/');
    expect(error).toBeInstanceOf(SourceNotFoundError);
    expect(error.message).toContain('"/missingdir": not found');
  });

  it('refuses a URL in COPY and --checksum on a local ADD source', async () => {
    await makeTree(context, { 'a.txt': 'A' });
    expect((await failure('COPY http://127.0.0.1:9/x /x')).message).toContain("source can't be a URL for COPY");
    expect((await failure(`ADD --checksum=sha256:${'0'.repeat(64)} a.txt /x`)).message).toContain("checksum can't be specified for non-HTTP(S) sources");
  });

  it('reports a malformed pattern', async () => {
    expect((await failure('COPY a[ /x')).message).toContain('invalid source pattern');
  });

  it('does not see what .dockerignore excludes', async () => {
    await makeTree(context, { 'keep.txt': 'k', 'secret.txt': 's', 'dir/secret.key': 'k', 'dir/ok': 'o' });
    const ignore = new IgnoreMatcher(parseDockerignore('secret.txt\n**/*.key\n'));
    expect(await failure('COPY secret.txt /x', { ignore })).toBeInstanceOf(SourceNotFoundError);
    await run('COPY . /all/', { ignore });
    expect(Object.keys(await describeTree(dest)).sort()).toEqual(['all', 'all/dir', 'all/dir/ok', 'all/keep.txt']);
  });

  it('--exclude leaves matching paths out (relative to the source)', async () => {
    await makeTree(context, { 'src/a.go': 'a', 'src/a_test.go': 't', 'src/deep/b_test.go': 't', 'src/deep/b.go': 'b' });
    await run('COPY --exclude=*_test.go --exclude=deep/*_test.go src /s/');
    expect(Object.keys(await describeTree(dest)).sort()).toEqual(['s', 's/a.go', 's/deep', 's/deep/b.go']);
  });

  it('--parents keeps each match\'s path, below the /./ pivot when there is one', async () => {
    await makeTree(context, { 'x/y/one.txt': '1', 'x/z/two.txt': '2', 'x/z/no.md': 'n' });
    await (await import('node:fs/promises')).chmod(path.join(context, 'x/z'), 0o750);
    await run('COPY --parents x/*/*.txt /p/');
    await run('COPY --parents ./x/./z/*.txt /q/');
    const tree = await describeTree(dest);
    expect(Object.keys(tree).filter((p) => p.startsWith('p')).sort()).toEqual(['p', 'p/x', 'p/x/y', 'p/x/y/one.txt', 'p/x/z', 'p/x/z/two.txt']);
    expect(tree['p/x/z']?.mode).toBe('0750');
    expect(Object.keys(tree).filter((p) => p.startsWith('q')).sort()).toEqual(['q', 'q/z', 'q/z/two.txt']);
  });
});

describe('owners and modes', () => {
  beforeEach(async () => {
    await makeTree(context, { 'f.sh': { content: 'run', mode: 0o750, uid: 1234, gid: 5678 }, 'tree/sub/g': { content: 'g', mode: 0o600 } });
    await makeTree(dest, {
      'etc/passwd': 'root:x:0:0:root:/root:/bin/sh\napp:x:1001:1002:app:/home/app:/bin/sh\n',
      'etc/group': 'root:x:0:\napp:x:1002:\nstaff:x:50:app\n',
      'existing': { dir: true, uid: 7, gid: 7 },
    });
  });

  it('makes context files root-owned, keeps owners from another root (--from)', async () => {
    await run('COPY f.sh /ctx/');
    await run('COPY f.sh /stage/', { sourceKind: 'root' });
    const tree = await describeTree(dest);
    expect(tree['ctx/f.sh']).toMatchObject({ owner: '0:0', mode: '0750' });
    expect(tree['stage/f.sh']).toMatchObject({ owner: '1234:5678', mode: '0750' });
  });

  it('--chown by name (passwd of the destination), by uid (gid = uid) and with a group name', async () => {
    await run('COPY --chown=app f.sh /n/');
    await run('COPY --chown=4242 f.sh /u/');
    await run('COPY --chown=app:staff f.sh /g/');
    await run('COPY --chown=9:10 f.sh /ids/');
    const tree = await describeTree(dest);
    expect(tree['n/f.sh']?.owner).toBe('1001:1002');
    expect(tree['u/f.sh']?.owner).toBe('4242:4242');
    expect(tree['g/f.sh']?.owner).toBe('1001:50');
    expect(tree['ids/f.sh']?.owner).toBe('9:10');
    expect((await failure('COPY --chown=nobody f.sh /x/')).message).toContain('unable to find user nobody');
    expect((await failure('COPY --chown=app:nogroup f.sh /x/')).message).toContain('unable to find group nogroup');
  });

  it('--chown also owns the directories it creates, never existing ones', async () => {
    await run('COPY --chown=app tree /existing/new/deeper/');
    const tree = await describeTree(dest);
    expect(tree['existing']?.owner).toBe('7:7');
    expect(tree['existing/new']).toMatchObject({ owner: '1001:1002', mode: '0755' });
    expect(tree['existing/new/deeper/sub']?.owner).toBe('1001:1002');
    expect(tree['existing/new/deeper/sub/g']).toMatchObject({ owner: '1001:1002', mode: '0600' });
  });

  it('--chmod octal applies to files and to directories, not to created parents', async () => {
    await run('COPY --chmod=0640 tree /oct/t');
    const tree = await describeTree(dest);
    expect(tree['oct']?.mode).toBe('0755');
    expect(tree['oct/t']?.mode).toBe('0640');
    expect(tree['oct/t/sub']?.mode).toBe('0640');
    expect(tree['oct/t/sub/g']?.mode).toBe('0640');
  });

  it('--chmod symbolic edits each mode (X only for dirs and executables)', async () => {
    await run('COPY --chmod=u+x,g-w,o=rX tree /sym/t');
    await run('COPY --chmod=go-rwx f.sh /sym2/');
    const tree = await describeTree(dest);
    expect(tree['sym/t/sub']?.mode).toBe('0755');
    // 0600 → u+x gives 0700; X then sees an execute bit (clauses apply in turn, as chmod(1)) → o=rx.
    expect(tree['sym/t/sub/g']?.mode).toBe('0705');
    expect(tree['sym2/f.sh']?.mode).toBe('0700');
  });
});

describe('where buildah and kaniko differ from BuildKit (reference-semantics.md)', () => {
  it('ADD --chmod=777 dir /dst applies the mode to the destination directory it creates', async () => {
    await makeTree(context, { 'dir/f': 'f' });
    await run('ADD --chmod=777 dir /dst');
    const tree = await describeTree(dest);
    expect(tree['dst']?.mode).toBe('0777');
    expect(tree['dst/f']?.mode).toBe('0777');
  });

  it('COPY --from a stage copies the file a source symlink points to, not the link', async () => {
    await makeTree(context, { 'opt/real': { content: 'payload', uid: 3, gid: 4 }, 'link': { link: '/opt/real' } });
    await run('COPY /link /x', { sourceKind: 'root' });
    expect((await describeTree(dest))['x']).toMatchObject({ type: 'file', content: 'payload', owner: '3:4' });
  });
});

describe('links', () => {
  it('follows a symlink named as the source, keeps links inside a copied directory', async () => {
    await makeTree(context, { 'real.txt': 'real', 'alias': { link: 'real.txt' }, 'd/target': 't', 'd/rel': { link: 'target' }, 'd/abs': { link: '/etc/passwd' } });
    await run('COPY alias /one/');
    await run('COPY d /two/');
    const tree = await describeTree(dest);
    expect(tree['one/alias']).toMatchObject({ type: 'file', content: 'real' });
    expect(tree['two/rel']).toMatchObject({ type: 'symlink', target: 'target' });
    expect(tree['two/abs']).toMatchObject({ type: 'symlink', target: '/etc/passwd' });
  });

  it('keeps hard links between copied files', async () => {
    await makeTree(context, { 'h/a': 'same' });
    await link(path.join(context, 'h/a'), path.join(context, 'h/b'));
    await run('COPY h /h/');
    const [a, b] = await Promise.all([lstat(path.join(dest, 'h/a')), lstat(path.join(dest, 'h/b'))]);
    expect(a.ino).toBe(b.ino);
    expect(a.nlink).toBe(2);
  });

  it('a source symlink cannot lead out of the source root', async () => {
    await writeFile(path.join(outside, 'secret'), 'host secret');
    await symlink(path.join(outside, 'secret'), path.join(context, 'escape'));
    await symlink('../../../../../../..' + outside, path.join(context, 'escape2'));
    expect(await failure('COPY escape /x')).toBeInstanceOf(SourceNotFoundError);
    expect(await failure('COPY escape2/secret /x')).toBeInstanceOf(SourceNotFoundError);
  });

  it('`..` in a source stays inside the context', async () => {
    await makeTree(context, { 'in.txt': 'inside' });
    await run('COPY ../../in.txt /x');
    expect(await readFile(path.join(dest, 'x'), 'utf8')).toBe('inside');
  });

  it('a symlink in the destination root never leads the copy out of it', async () => {
    await makeTree(context, { 'f': 'payload', 'd/inner': 'payload2' });
    await symlink(outside, path.join(dest, 'evil'));
    await symlink('../../../../../../..' + outside, path.join(dest, 'evil2'));
    await run('COPY f /evil/f');
    await run('COPY d /evil2/');
    expect((await describeTree(outside))).toEqual({});
    const tree = await describeTree(dest);
    expect(tree[outside.slice(1) + '/f']?.content).toBe('payload');
    expect(tree[outside.slice(1) + '/inner']?.content).toBe('payload2');
  });

  it('replaces a symlink at a file\'s target instead of writing through it', async () => {
    await makeTree(context, { 'd/name': 'new' });
    await writeFile(path.join(outside, 'victim'), 'untouched');
    await mkdir(path.join(dest, 'd'));
    await symlink(path.join(outside, 'victim'), path.join(dest, 'd/name'));
    await run('COPY d /d');
    expect(await readFile(path.join(outside, 'victim'), 'utf8')).toBe('untouched');
    expect((await describeTree(dest))['d/name']).toMatchObject({ type: 'file', content: 'new' });
  });
});

describe('heredocs and the change set', () => {
  it('writes a heredoc as a 0644 file named after its delimiter or as the destination', async () => {
    await run('COPY <<EOF /etc/motd\nhello\nworld\nEOF');
    await run('COPY <<greeting.txt <<other /h/\nhi\ngreeting.txt\nthere\nother');
    const tree = await describeTree(dest);
    expect(tree['etc/motd']).toMatchObject({ type: 'file', mode: '0644', owner: '0:0', content: 'hello\nworld\n' });
    expect(tree['h/greeting.txt']?.content).toBe('hi\n');
    expect(tree['h/other']?.content).toBe('there\n');
  });

  it('lists exactly the written paths, parents first, including directories written into', async () => {
    await makeTree(dest, { usr: { dir: true }, 'usr/lib/keep': 'k' });
    await makeTree(context, { 'lib/one': '1', 'lib/two/three': '3' });
    const result = await run('COPY lib /usr/lib/app/');
    expect(result.changes.root).toBe(dest);
    expect(result.changes.changes).toEqual([
      { kind: 'upsert', path: 'usr' },
      { kind: 'upsert', path: 'usr/lib' },
      { kind: 'upsert', path: 'usr/lib/app' },
      { kind: 'upsert', path: 'usr/lib/app/one' },
      { kind: 'upsert', path: 'usr/lib/app/two' },
      { kind: 'upsert', path: 'usr/lib/app/two/three' },
    ]);
  });

  it('its change set is a layer as it stands: hard links, owners and modes carried into the tar', async () => {
    await makeTree(context, { 'bin/tool': { content: 'x', mode: 0o755 }, 'bin/alias': { link: 'tool' } });
    await makeTree(dest, { usr: { dir: true } });
    await link(path.join(context, 'bin/tool'), path.join(context, 'bin/tool2'));
    const result = await run('COPY --chown=5:6 bin /usr/local/bin/');
    const out = await tempDir();
    cleanups.push(out.cleanup);
    const layer = await writeLayer(result.changes, { compression: 'gzip', outputDir: out.dir });
    const entries: string[] = [];
    const extract = tarStream.extract();
    const reading = (async () => {
      for await (const entry of extract) {
        const h = entry.header;
        entries.push(`${h.name} ${h.type} ${(h.mode ?? 0).toString(8)} ${h.uid}:${h.gid}${h.linkname ? ' -> ' + h.linkname : ''}`);
        entry.resume();
      }
    })();
    createReadStream(layer?.path ?? '').pipe(zlib.createGunzip()).pipe(extract);
    await reading;
    expect(entries).toEqual([
      'usr/ directory 755 0:0',
      'usr/local/ directory 755 5:6',
      'usr/local/bin/ directory 755 5:6',
      'usr/local/bin/alias symlink 777 5:6 -> tool',
      'usr/local/bin/tool file 755 5:6',
      'usr/local/bin/tool2 link 755 5:6 -> usr/local/bin/tool',
    ]);
  });

  it('--link gives the same tree as a plain copy', async () => {
    await makeTree(context, { 'l/a': 'a', 'l/b': { link: 'a' } });
    await run('COPY --link l /plain/');
    await run('COPY l /linked/');
    const tree = await describeTree(dest);
    expect(tree['linked/a']).toEqual(tree['plain/a']);
    expect(tree['linked/b']).toEqual(tree['plain/b']);
  });
});
