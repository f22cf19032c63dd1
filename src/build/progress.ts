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

/** kaniko's --verbosity, --log-format and --log-timestamp. */
export interface LogSettings {
  verbosity: 'panic' | 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';
  format: 'text' | 'color' | 'json';
  timestamp: boolean;
}

const defaultLogSettings: LogSettings = { verbosity: 'info', format: 'text', timestamp: false };

/** Progress lines are info: shown at info and more verbose levels, as kaniko's are. */
function showsInfo(verbosity: LogSettings['verbosity']): boolean {
  return verbosity === 'info' || verbosity === 'debug' || verbosity === 'trace';
}

export function createProgress(
  write: (text: string) => void,
  settings: LogSettings = defaultLogSettings,
  now: () => number = () => performance.now(),
  clock: () => Date = () => new Date(),
): Progress {
  const emit = (line: string): void => {
    if (!showsInfo(settings.verbosity)) return;
    if (settings.format === 'json') {
      write(`${JSON.stringify({ level: 'info', msg: line, time: clock().toISOString() })}\n`);
    } else {
      write(`${settings.timestamp ? `${clock().toISOString()} ` : ''}${line}\n`);
    }
  };
  return {
    info: emit,
    step(label) {
      const started = now();
      emit(label);
      return (outcome) => emit(`  ${outcome} in ${((now() - started) / 1000).toFixed(2)} s`);
    },
  };
}
