import { entriesBelow, selectCopySources, walkContext, type ContextEntry } from '../context/index.js';
import { formatPlanText, type BuildPlan } from '../dockerfile/plan.js';
import type { BuildOptions } from './options.js';
import { prepareBuild, type PrepareDependencies } from './prepare.js';

export interface DryRunDependencies extends PrepareDependencies {
  stdout: { write(text: string): void };
}

/** How many context paths a dry run names per COPY/ADD source before it only counts them. */
const listedPerSource = 20;

/**
 * `kiln --dry-run`: the resolved plan (stages in build order, skipped ones marked, each instruction
 * expanded with its line) and the context files each COPY/ADD will take. No registry is contacted
 * and nothing runs.
 */
export async function dryRun(options: BuildOptions, deps: DryRunDependencies): Promise<void> {
  const prepared = await prepareBuild(options, deps);
  try {
    deps.stdout.write(formatPlanText(prepared.plan));
    const entries = await walkContext(prepared.context.root, prepared.context.ignore);
    deps.stdout.write(describeContextSources(prepared.plan, entries));
  } finally {
    await prepared.context.cleanup();
  }
}

/** One block per COPY/ADD that reads the build context: its line, then what each source matches. */
export function describeContextSources(plan: BuildPlan, entries: readonly ContextEntry[]): string {
  const lines: string[] = [];
  for (const index of plan.order) {
    for (const planned of plan.stages[index]?.instructions ?? []) {
      const instruction = planned.expanded ?? planned.instruction;
      if (instruction.kind !== 'copy' && instruction.kind !== 'add') continue;
      if (instruction.kind === 'copy' && instruction.from !== undefined) continue;
      const local = instruction.sources.filter((source) => !/^[a-z][a-z0-9+.-]*:\/\//i.test(source) && !source.startsWith('git@'));
      if (local.length === 0) continue;
      lines.push(`context files for line ${planned.line} (${planned.text}):`);
      for (const source of local) {
        const matched = selectCopySources(entries, source);
        if (matched.length === 0) {
          lines.push(`  ${source}: no match (the build will fail here)`);
          continue;
        }
        const files = matched.flatMap((entry) => (entry.type === 'directory' ? entriesBelow(entries, entry.path).filter((e) => e.type !== 'directory') : [entry]));
        const shown = files.slice(0, listedPerSource).map((entry) => entry.path || '.');
        const more = files.length > shown.length ? ` … and ${files.length - shown.length} more` : '';
        lines.push(`  ${source}: ${files.length} file(s): ${shown.join(', ')}${more}`);
      }
    }
  }
  return lines.length === 0 ? '' : `${lines.join('\n')}\n`;
}
