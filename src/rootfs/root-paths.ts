/**
 * A set of root-relative paths (`etc/hosts`, `kiln`) that stand for themselves and everything
 * below them. Matching is by whole path components: `var/run` covers `var/run/x`, not `var/running`.
 */
export class RootPaths {
  private readonly paths: ReadonlySet<string>;

  constructor(paths: Iterable<string>) {
    this.paths = new Set(paths);
  }

  /** True when exactly this path is in the set. */
  has(relative: string): boolean {
    return this.paths.has(relative);
  }

  /** True when the path or one of its ancestors is in the set. */
  covers(relative: string): boolean {
    let p = relative;
    for (;;) {
      if (this.paths.has(p)) return true;
      const slash = p.lastIndexOf('/');
      if (slash < 0) return false;
      p = p.slice(0, slash);
    }
  }

  /** True when some path of the set lies strictly below this one (the root, '', holds all of them). */
  holdsBelow(relative: string): boolean {
    const prefix = relative === '' ? '' : `${relative}/`;
    for (const p of this.paths) if (p.startsWith(prefix) && p !== relative) return true;
    return false;
  }

  list(): string[] {
    return [...this.paths].sort();
  }
}
