/** Progress on stderr: one line when a step starts, one when it ends with its time and layer size. */
export interface Progress {
  info(line: string): void;
  /** Starts a step; the returned function ends it. */
  step(label: string): (outcome: string) => void;
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

export function createProgress(write: (text: string) => void, now: () => number = () => performance.now()): Progress {
  return {
    info: (line) => write(`${line}\n`),
    step(label) {
      const started = now();
      write(`${label}\n`);
      return (outcome) => write(`  ${outcome} in ${((now() - started) / 1000).toFixed(2)} s\n`);
    },
  };
}
