import type { BuildOptions } from './options.js';

/**
 * kaniko flags kiln accepts by name but cannot honour yet. Each fails the build up front with a
 * reason: silently ignoring a flag (as kaniko did with RUN --mount) builds something else than asked.
 */
export function unsupportedOptions(options: BuildOptions): string[] {
  const problems: string[] = [];
  if (options.cache) problems.push('--cache: the layer cache is not available in this version of kiln yet');
  if (options.pushIgnoreImmutableTagErrors) problems.push('--push-ignore-immutable-tag-errors is not available yet');
  return problems;
}
