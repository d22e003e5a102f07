#!/usr/bin/env node
// The `vaporform` command: runs the TypeScript sources through tsx, like the server does.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/main.ts');
process.exitCode = await main(process.argv.slice(2));
