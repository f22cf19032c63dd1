/** COPY and ADD for the executor: one call per instruction, see copy-into-root.ts. */
export { copyIntoRoot, type CopyIntoRootOptions, type CopyResult } from './copy-into-root.js';
export { contextSourceTree, rootSourceTree, type SourceTree } from './select-sources.js';
export { compileFileMode, type ModeEditor } from './chmod.js';
export { resolveChown } from './chown.js';
export type { GitSourceOptions } from './add-git.js';
export { ChecksumMismatchError, CopyError, FileModeError, RemoteSourceError, SourceNotFoundError } from './errors.js';
