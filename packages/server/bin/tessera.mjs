#!/usr/bin/env node
// The `tessera` command: runs the built CLI (npm run build writes ../dist).
import { run } from '../dist/cli/main.js';

run(process.argv.slice(2));
