#!/usr/bin/env node
import packageJson from '../../package.json' with { type: 'json' };
import { productionDependencies } from './dependencies.js';
import { runCli } from './program.js';

process.exitCode = await runCli(process.argv.slice(2), productionDependencies(packageJson.version));
