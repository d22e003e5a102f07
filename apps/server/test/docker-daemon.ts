// The test Docker engine from the command line (used by .ci/run and the benchmarks):
//   node --import tsx apps/server/test/docker-daemon.ts start   # prints DOCKER_HOST=unix://…
//   node --import tsx apps/server/test/docker-daemon.ts stop
import { startTestDockerd, stopTestDockerd } from './docker.ts';

const command = process.argv[2];
try {
  if (command === 'start') console.log(`DOCKER_HOST=${await startTestDockerd()}`);
  else if (command === 'stop') await stopTestDockerd();
  else throw new Error('usage: docker-daemon.ts start|stop');
} catch (err) {
  console.error(`docker-daemon: ${(err as Error).message}`);
  process.exit(1);
}
