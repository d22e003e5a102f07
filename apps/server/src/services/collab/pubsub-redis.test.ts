import { fileURLToPath } from 'node:url';
import type { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedis, type TestRedis } from '../../../test/redis.ts';
import { runMochaSpec } from './conformance/run-mocha.ts';
import { RedisPubSub } from './pubsub-redis.ts';

const spec = fileURLToPath(new URL('./conformance/redis-pubsub.spec.ts', import.meta.url));

// sharedb/test/pubsub.js has 8 tests; the spec runs it without and with a prefix.
const EXPECTED_PASSES = 16;

function subscribe(pubsub: RedisPubSub, channel: string): Promise<Readable> {
  return new Promise((resolve, reject) =>
    pubsub.subscribe(channel, (err, stream) =>
      err ? reject(err) : resolve(stream as unknown as Readable),
    ),
  );
}

function publish(pubsub: RedisPubSub, channels: string[], data: object): Promise<void> {
  return new Promise((resolve, reject) =>
    pubsub.publish(channels, data, (err) => (err ? reject(err) : resolve())),
  );
}

function close(pubsub: RedisPubSub): Promise<void> {
  return new Promise((resolve, reject) => pubsub.close((err) => (err ? reject(err) : resolve())));
}

/** Collects what a stream delivers; `next(n)` waits (bounded) until n items arrived. */
function collect(stream: Readable): { items: unknown[]; next(n: number): Promise<unknown[]> } {
  const items: unknown[] = [];
  stream.on('data', (d: unknown) => items.push(d));
  return {
    items,
    async next(n) {
      const deadline = Date.now() + 10_000;
      while (items.length < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      return items;
    },
  };
}

describe('RedisPubSub', () => {
  let redis: TestRedis;

  beforeAll(async () => {
    redis = await startRedis();
  });

  afterAll(async () => {
    await redis?.stop();
  });

  it('passes ShareDB’s own pub/sub conformance suite (run with mocha)', async () => {
    const result = await runMochaSpec(spec, { VF_COLLAB_REDIS_URL: redis.url }, 120_000);
    console.log(`ShareDB pubsub conformance: ${result.passes} passed, ${result.failures} failed`);
    if (result.failures > 0) {
      console.error(`failures:\n  ${result.failed.join('\n  ')}`);
      if (result.passes === 0) console.error(result.output);
    }
    expect(result.failed).toEqual([]);
    expect(result.passes).toBeGreaterThanOrEqual(EXPECTED_PASSES);
  }, 180_000);

  it('delivers what one instance publishes to the subscribers of another, per channel and prefix', async () => {
    const a = new RedisPubSub(redis.url, { prefix: 'vf' });
    const b = new RedisPubSub(redis.url, { prefix: 'vf' });
    const other = new RedisPubSub(redis.url, { prefix: 'elsewhere' });
    try {
      const doc = collect(await subscribe(b, 'p1.src/a.ts'));
      const collection = collect(await subscribe(b, 'p1'));
      const foreign = collect(await subscribe(other, 'p1.src/a.ts'));
      // ShareDB publishes each op to its document's and its collection's channel at once.
      await publish(a, ['p1', 'p1.src/a.ts'], { v: 1, op: ['x'] });
      await publish(a, ['p1.src/b.ts'], { v: 7 });
      await publish(a, ['p1.src/a.ts'], { v: 2, op: ['🙂'] });
      expect(await doc.next(2)).toEqual([
        { v: 1, op: ['x'] },
        { v: 2, op: ['🙂'] },
      ]);
      expect(await collection.next(1)).toEqual([{ v: 1, op: ['x'] }]);
      // Another prefix (another deployment on the same Redis) hears nothing.
      await new Promise((r) => setTimeout(r, 200));
      expect(foreign.items).toEqual([]);
    } finally {
      await Promise.all([close(a), close(b), close(other)]);
    }
  });

  it("delivers to its own instance's subscribers at once and once, until another instance shares the channel", async () => {
    const a = new RedisPubSub(redis.url, { prefix: 'vf' });
    const b = new RedisPubSub(redis.url, { prefix: 'vf' });
    try {
      const here = collect(await subscribe(a, 'p2.src/a.ts'));
      const there = collect(await subscribe(b, 'p2.src/a.ts'));
      process.kill(redis.pid, 'SIGSTOP'); // the Redis server answers nothing now
      let published: Promise<void>;
      try {
        published = publish(a, ['p2.src/a.ts'], { v: 3, op: ['x'] });
        expect(await here.next(1)).toEqual([{ v: 3, op: ['x'] }]);
        expect(there.items).toEqual([]);
      } finally {
        process.kill(redis.pid, 'SIGCONT');
      }
      await published;
      expect(await there.next(1)).toEqual([{ v: 3, op: ['x'] }]);
      expect(b.othersPublished('p2', 'src/a.ts')).toBe(true);
      expect(a.othersPublished('p2', 'src/a.ts')).toBe(false); // its own echo does not count
      // An instance whose writes lose every race says it shares the channel, without an op.
      b.share('p2', 'src/a.ts');
      const deadline = Date.now() + 5000;
      while (!a.othersPublished('p2', 'src/a.ts') && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 10));
      }
      expect(a.othersPublished('p2', 'src/a.ts')).toBe(true);
      expect(here.items).toHaveLength(1);
      await publish(b, ['p2.src/a.ts'], { v: 4, op: ['y'] });
      expect(await here.next(2)).toEqual([
        { v: 3, op: ['x'] },
        { v: 4, op: ['y'] },
      ]);
      // Each instance's own message came back from Redis too, and was dropped there.
      await new Promise((r) => setTimeout(r, 200));
      expect(here.items).toHaveLength(2);
      expect(there.items).toEqual([
        { v: 3, op: ['x'] },
        { v: 4, op: ['y'] },
      ]);

      // B published on the channel: A's next message takes Redis's one order, like B's.
      expect(a.othersPublished('p2', 'src/a.ts')).toBe(true);
      process.kill(redis.pid, 'SIGSTOP');
      try {
        published = publish(a, ['p2.src/a.ts'], { v: 5, op: ['z'] });
        await new Promise((r) => setTimeout(r, 300));
        expect(here.items).toHaveLength(2);
      } finally {
        process.kill(redis.pid, 'SIGCONT');
      }
      await published;
      expect(await here.next(3)).toEqual([
        { v: 3, op: ['x'] },
        { v: 4, op: ['y'] },
        { v: 5, op: ['z'] },
      ]);
      expect(await there.next(3)).toHaveLength(3);
      await new Promise((r) => setTimeout(r, 200));
      expect(here.items).toHaveLength(3);
    } finally {
      await Promise.all([close(a), close(b)]);
    }
  });

  it('stops delivering to a destroyed stream and reports a failed publish instead of throwing', async () => {
    const a = new RedisPubSub(redis.url);
    const stream = await subscribe(a, 'gone');
    const received = collect(stream);
    stream.destroy();
    await new Promise((r) => setTimeout(r, 100));
    await publish(a, ['gone'], { v: 1 });
    await new Promise((r) => setTimeout(r, 200));
    expect(received.items).toEqual([]);
    await close(a);
    await close(a); // twice is fine
    await expect(publish(a, ['gone'], { v: 2 })).rejects.toThrow();
  });
});
