import { createServer, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { createDb } from '../db/pool.ts';
import { freePort } from '../db/embedded.ts';
import { Metrics } from '../services/monitoring/index.ts';
import { createOpsRoutes } from './ops-routes.ts';

describe('/readyz when the database is not there', () => {
  it('is 503 unavailable at once when the database refuses connections', async () => {
    const port = await freePort();
    const { pool } = createDb(`postgres://nobody:x@127.0.0.1:${port}/none`);
    try {
      const res = await createOpsRoutes({ pool, metrics: new Metrics() }).request('/readyz');
      expect(res.status).toBe(503);
      expect(res.headers.get('retry-after')).toBe('1');
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('unavailable');
    } finally {
      await pool.end();
    }
  });

  it('is 503 within about two seconds when the database accepts but never answers', async () => {
    // A peer that takes the connection and says nothing: a hung (e.g. stopped) server.
    const sockets: Socket[] = [];
    const silent = createServer((s) => sockets.push(s));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const port = (silent.address() as { port: number }).port;
    const { pool } = createDb(`postgres://nobody:x@127.0.0.1:${port}/none`);
    try {
      const started = performance.now();
      const res = await createOpsRoutes({ pool, metrics: new Metrics() }).request('/readyz');
      const ms = performance.now() - started;
      expect(res.status).toBe(503);
      expect(ms).toBeLessThan(4000); // not the pool's 10 s connection timeout
    } finally {
      for (const s of sockets) s.destroy();
      silent.close();
      await pool.end().catch(() => undefined);
    }
  }, 20_000);
});
