/**
 * Azure Pipelines logging commands (`##vso[area.action key=value;…]message`), written by hand:
 * azure-pipelines-task-lib installs, but its shelljs dependency loads its commands with dynamic
 * require() calls that esbuild cannot bundle, and a task must ship as one bundle. The escaping
 * follows the agent's rules (the same as task-lib's taskcommand.ts).
 */
export type LogWriter = (line: string) => void;

function escapeData(text: string): string {
  return text.replace(/%/g, '%AZP25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
}

function escapeProperty(text: string): string {
  return escapeData(text).replace(/]/g, '%5D').replace(/;/g, '%3B');
}

export function loggingCommand(command: string, properties: Record<string, string | undefined>, message: string): string {
  const props = Object.entries(properties)
    .filter((entry): entry is [string, string] => entry[1] !== undefined)
    .map(([key, value]) => `${key}=${escapeProperty(value)};`)
    .join('');
  return `##vso[${command}${props === '' ? '' : ` ${props}`}]${escapeData(message)}`;
}

export interface AzureLog {
  setSecret(value: string): void;
  setOutputVariable(name: string, value: string): void;
  error(message: string, location?: { file: string; line: number }): void;
  fail(message: string): void;
  info(line: string): void;
}

export function azureLog(write: LogWriter): AzureLog {
  return {
    setSecret: (value) => write(loggingCommand('task.setsecret', {}, value)),
    setOutputVariable: (name, value) => write(loggingCommand('task.setvariable', { variable: name, isOutput: 'true' }, value)),
    error: (message, location) =>
      write(loggingCommand('task.logissue', { type: 'error', sourcepath: location?.file, linenumber: location === undefined ? undefined : String(location.line) }, message)),
    fail: (message) => write(loggingCommand('task.complete', { result: 'Failed' }, message)),
    info: (line) => write(line),
  };
}
