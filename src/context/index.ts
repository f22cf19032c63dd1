/** The build context module's public surface (see each file for details). */
export { openBuildContext, parseContextSpec, type ContextSpec } from './source.js';
export {
  ContextFetchError,
  ContextSourceError,
  ContextSpecError,
  GitContextError,
  UnsafeTarEntryError,
  type BuildContext,
  type ContextKind,
  type ContextOptions,
  type DockerfileSource,
  type GitOptions,
} from './types.js';
export { DockerignoreSyntaxError, IgnoreMatcher, IgnorePattern, parseDockerignore, type ParentMatches } from './dockerignore.js';
export { ContextWalkError, walkContext, type ContextEntry, type ContextEntryType, type WalkOptions } from './walk.js';
export { compileCopyExcludes, entriesBelow, normalizeCopySource, selectCopySources } from './copy-sources.js';
export { cleanPath, compileGoMatch, goMatch, GlobSyntaxError, hasGlobMeta } from './go-path.js';
export { contextView } from './context-view.js';
export { withHttpGet, type HttpFailure } from './http-get.js';
export { extractTarStream, detectFormat, type StreamFormat } from './tar-source.js';
export { parseGitOptions } from './git-source.js';
export { createSpawnRunner, type ProcessRunner, type ProcessResult, type ProcessRunOptions } from './process.js';
