/** Base class so callers can tell snapshot failures from step failures. */
export class SnapshotError extends Error {
  override name = 'SnapshotError';
}

export class SnapshotStateError extends SnapshotError {
  override name = 'SnapshotStateError';
  constructor(
    readonly operation: string,
    readonly expected: string,
  ) {
    super(`snapshot ${operation}() called ${expected}`);
  }
}

export class InvalidIgnorePathError extends SnapshotError {
  override name = 'InvalidIgnorePathError';
  constructor(readonly ignorePath: string) {
    super(`--ignore-path ${JSON.stringify(ignorePath)} names the whole root filesystem; nothing would be snapshotted`);
  }
}

export class SnapshotWalkError extends SnapshotError {
  override name = 'SnapshotWalkError';
  constructor(
    readonly root: string,
    readonly path: string,
    cause: unknown,
  ) {
    super(`cannot read ${JSON.stringify(path)} under root ${root}: ${cause instanceof Error ? cause.message : String(cause)}`, {
      cause,
    });
  }
}

export class OverlayError extends SnapshotError {
  override name = 'OverlayError';
  constructor(
    message: string,
    readonly command?: string,
    readonly stderr?: string,
  ) {
    super(stderr ? `${message}: ${stderr.trim()}` : message);
  }
}
