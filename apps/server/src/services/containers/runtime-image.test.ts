import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { imageNodeBinary } from './runtime-image.ts';

// Projects run on Node.js whatever runs the server: under `bun test` (and `npm run start:bun`)
// the runtime image must still get Node, not Bun as `node`.
describe('the runtime image', () => {
  it('packs Node.js as node, also when the server runs on Bun', () => {
    const said = execFileSync(
      imageNodeBinary(),
      ['-p', 'process.release.name + " " + typeof Bun'],
      {
        encoding: 'utf8',
      },
    ).trim();
    expect(said).toBe('node undefined');
  });
});
