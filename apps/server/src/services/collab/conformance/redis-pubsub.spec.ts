// ShareDB's own pub/sub conformance suite (`sharedb/test/pubsub.js`), run by mocha as
// sharedb-redis-pubsub runs it: the suite gets a `create` that hands out a fresh adapter. Run
// twice, without and with a channel prefix, as ShareDB runs it for its MemoryPubSub.
//
// Run by pubsub-redis.test.ts (vitest), which starts a redis-server and passes VF_COLLAB_REDIS_URL.
import { createRequire } from 'node:module';
import { RedisPubSub } from '../pubsub-redis.ts';

const require = createRequire(import.meta.url);
const url = process.env.VF_COLLAB_REDIS_URL;
if (!url) throw new Error('VF_COLLAB_REDIS_URL is not set (run through pubsub-redis.test.ts)');

type Create = (callback: (err: Error | null, pubsub?: RedisPubSub) => void) => void;
const suite = require('sharedb/test/pubsub') as (create: Create) => void;

suite((callback) => callback(null, new RedisPubSub(url)));
suite((callback) => callback(null, new RedisPubSub(url, { prefix: 'vf-test' })));
