import { runPrivilegedBuild } from '../build-runner.js';
import { privilegedBuildFlag } from '../privilege.js';
import { runTask } from './run.js';

// Under sudo, the same bundle runs the build itself (see build-runner.ts).
if (process.argv[2] === privilegedBuildFlag) process.exitCode = await runPrivilegedBuild(process.argv[3] ?? '', process.stderr);
else process.exitCode = await runTask();
