/** Instructions back to one line of Dockerfile text, for plans, progress output and ONBUILD triggers. */
import type { InstructionNode } from './ast.js';
import type { CommandLine, Instruction, KeyValue } from './instructions.js';

function quoteJson(args: readonly string[]): string {
  return JSON.stringify(args);
}

/** An InstructionNode as Dockerfile text (for ONBUILD triggers, which the image config keeps as text). */
export function nodeText(node: InstructionNode): string {
  const parts = [node.original.toUpperCase(), ...node.flags];
  if (node.keyword === 'env' || node.keyword === 'label') {
    for (let i = 0; i + 2 < node.args.length + 1; i += 3) {
      const sep = node.args[i + 2] ?? '=';
      parts.push(sep === '=' ? `${node.args[i] ?? ''}=${node.args[i + 1] ?? ''}` : `${node.args[i] ?? ''} ${node.args[i + 1] ?? ''}`);
    }
  } else if (node.json) {
    parts.push(quoteJson(node.args));
  } else {
    parts.push(...node.args);
  }
  let text = parts.filter((p) => p !== '').join(' ');
  for (const h of node.heredocs) text += `\n${h.content}${h.name}`;
  return text;
}

function cmdText(cmd: CommandLine): string {
  return cmd.form === 'exec' ? quoteJson(cmd.args) : cmd.command;
}

function kvText(pairs: readonly KeyValue[]): string {
  return pairs.map((p) => `${p.key}=${/[\s"'\\]/.test(p.value) || p.value === '' ? JSON.stringify(p.value) : p.value}`).join(' ');
}

/** A typed instruction as one line of Dockerfile text, for plans and progress output. */
export function formatInstruction(i: Instruction): string {
  switch (i.kind) {
    case 'from':
      return ['FROM', i.platform === undefined ? '' : `--platform=${i.platform}`, i.image, i.stageName === undefined ? '' : `AS ${i.stageName}`].filter(Boolean).join(' ');
    case 'run': {
      const flags = [
        ...i.mountSpecs.map((m) => `--mount=${m}`),
        i.network === undefined ? '' : `--network=${i.network}`,
        i.security === undefined ? '' : `--security=${i.security}`,
      ];
      return ['RUN', ...flags, cmdText(i.cmd)].filter(Boolean).join(' ');
    }
    case 'cmd':
      return `CMD ${cmdText(i.cmd)}`;
    case 'entrypoint':
      return `ENTRYPOINT ${cmdText(i.cmd)}`;
    case 'shell':
      return `SHELL ${quoteJson(i.shell)}`;
    case 'label':
      return `LABEL ${kvText(i.labels)}`;
    case 'env':
      return `ENV ${kvText(i.pairs)}`;
    case 'maintainer':
      return `MAINTAINER ${i.maintainer}`;
    case 'expose':
      return `EXPOSE ${(i.ports === undefined ? i.words : i.ports.map((p) => `${p.start === p.end ? p.start : `${p.start}-${p.end}`}/${p.protocol}`)).join(' ')}`;
    case 'copy':
    case 'add': {
      const flags: string[] = [];
      if (i.kind === 'copy' && i.from !== undefined) flags.push(`--from=${i.from}`);
      if (i.chown !== undefined) flags.push(`--chown=${i.chown}`);
      if (i.chmod !== undefined) flags.push(`--chmod=${i.chmod}`);
      if (i.link) flags.push('--link');
      if (i.kind === 'copy' && i.parents) flags.push('--parents');
      for (const e of i.excludes) flags.push(`--exclude=${e}`);
      if (i.kind === 'add') {
        if (i.checksum !== undefined) flags.push(`--checksum=${i.checksum}`);
        if (i.keepGitDir) flags.push('--keep-git-dir');
        if (i.unpack !== undefined) flags.push(`--unpack=${i.unpack}`);
      }
      const srcs = [...i.sources, ...i.heredocSources.map((h) => `<<${h.name}`)];
      const body = i.json ? quoteJson([...i.sources, i.destination]) : [...srcs, i.destination].join(' ');
      return [i.kind.toUpperCase(), ...flags, body].join(' ');
    }
    case 'volume':
      return `VOLUME ${quoteJson(i.volumes)}`;
    case 'user':
      return `USER ${i.user}`;
    case 'workdir':
      return `WORKDIR ${i.path}`;
    case 'arg':
      return `ARG ${i.args.map((a) => (a.defaultValue === undefined ? a.key : `${a.key}=${a.defaultValue}`)).join(' ')}`;
    case 'onbuild':
      return `ONBUILD ${i.expression}`;
    case 'stopsignal':
      return `STOPSIGNAL ${i.signal}`;
    case 'healthcheck': {
      if (i.test[0] === 'NONE') return 'HEALTHCHECK NONE';
      const flags: string[] = [];
      const dur = (ns: number): string => `${ns / 1e9}s`;
      if (i.interval !== undefined) flags.push(`--interval=${dur(i.interval)}`);
      if (i.timeout !== undefined) flags.push(`--timeout=${dur(i.timeout)}`);
      if (i.startPeriod !== undefined) flags.push(`--start-period=${dur(i.startPeriod)}`);
      if (i.startInterval !== undefined) flags.push(`--start-interval=${dur(i.startInterval)}`);
      if (i.retries !== undefined) flags.push(`--retries=${i.retries}`);
      const cmd = i.test[0] === 'CMD' ? quoteJson(i.test.slice(1)) : (i.test[1] ?? '');
      return ['HEALTHCHECK', ...flags, 'CMD', cmd].join(' ');
    }
  }
}
