/** What a GitHub runner gives an action step, and how to read back what the step wrote. */

/** The files and directories of one step, as a runner lays them out. */
export interface ActionStepFiles {
  output: string;
  summary: string;
  state: string;
  temp: string;
  home: string;
  workspace: string;
}

/** GitHub's file-command format: `name<<DELIMITER\nvalue\nDELIMITER` (what @actions/core writes). */
export function parseFileCommands(text: string): Record<string, string> {
  const values: Record<string, string> = {};
  const pattern = /^(.+?)<<(ghadelimiter_[0-9a-f-]+)\n([\s\S]*?)\n\2$/gm;
  for (const match of text.matchAll(pattern)) values[match[1] ?? ''] = match[3] ?? '';
  return values;
}

/** Environment for one action step: only what a runner sets, plus the inputs (names as GitHub spells them). */
export function actionStepEnv(files: ActionStepFiles, inputs: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: files.home,
    GITHUB_ACTIONS: 'true',
    GITHUB_ACTOR: 'octocat',
    GITHUB_WORKSPACE: files.workspace,
    GITHUB_OUTPUT: files.output,
    GITHUB_STEP_SUMMARY: files.summary,
    GITHUB_STATE: files.state,
    RUNNER_TEMP: files.temp,
  };
  for (const [name, value] of Object.entries(inputs)) env[`INPUT_${name.replace(/ /g, '_').toUpperCase()}`] = value;
  return env;
}

/** The post step's environment: the main step's, plus what main saved with saveState as STATE_*. */
export function postStepEnv(mainEnv: NodeJS.ProcessEnv, state: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...mainEnv };
  for (const [name, value] of Object.entries(state)) env[`STATE_${name}`] = value;
  return env;
}
