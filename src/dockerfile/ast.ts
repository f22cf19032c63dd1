/** A source range in a Dockerfile: 1-based physical lines, inclusive. */
export interface SourceRange {
  startLine: number;
  endLine: number;
}

export interface Heredoc {
  name: string;
  content: string;
  /** False when the delimiter was quoted (`<<'EOF'`, `<<"EOF"`): no expansion inside. */
  expand: boolean;
  /** `<<-`: leading tabs were stripped. */
  chomp: boolean;
  /** The fd the heredoc feeds (`3<<EOF`), 0 when none is given. */
  fileDescriptor: number;
}

/**
 * One instruction as the parser sees it, before any expansion or typing: BuildKit's parser.Node
 * flattened. `args` is the value chain of BuildKit's dump (already split per instruction rules).
 */
export interface InstructionNode {
  /** Lower-cased keyword: `from`, `run`, ... */
  keyword: string;
  /** The keyword as written, for messages. */
  original: string;
  /** Leading `--name[=value]` words, verbatim with their `--`. */
  flags: string[];
  args: string[];
  /** True when the arguments were a JSON array (exec form). */
  json: boolean;
  heredocs: Heredoc[];
  /** The logical line: continuations joined, comment lines dropped (BuildKit's Node.Original). */
  text?: string;
  /** ONBUILD's nested instruction. */
  next?: InstructionNode;
  range: SourceRange;
}

export interface ParserDirectives {
  escape: '\\' | '`';
  syntax?: string;
  check?: string;
}

export interface ParseWarning {
  message: string;
  range: SourceRange;
}

export interface Dockerfile {
  directives: ParserDirectives;
  instructions: InstructionNode[];
  warnings: ParseWarning[];
}

/** A located error: `Dockerfile:12: ...`. */
export class DockerfileSyntaxError extends Error {
  constructor(
    readonly file: string,
    readonly line: number,
    readonly detail: string,
    readonly column?: number,
  ) {
    super(`${file}:${line}${column === undefined ? '' : `:${column}`}: ${detail}`);
    this.name = 'DockerfileSyntaxError';
  }
}
