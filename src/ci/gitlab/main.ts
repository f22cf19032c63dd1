#!/usr/bin/env node
// The GitLab component's job script: `kiln-gitlab [kaniko flags…]`, with the inputs in KILN_* variables.
import { buildInProcess } from '../build-runner.js';
import { runGitLabEntry } from './job.js';

process.exitCode = await runGitLabEntry(process.argv.slice(2), {
  env: process.env,
  cwd: process.cwd(),
  stdout: process.stdout,
  stderr: process.stderr,
  build: (options) => buildInProcess(options, process.env, process.stderr),
});
