// Builds the local images from this machine's own files (node, npm, a shell, coreutils): no
// registry needed. `vaporform/runtime:node` for project containers and `vaporform/runtime:server`
// (the same with iptables), the base of the server image (infra/server.Dockerfile). Skips a build
// when an image with the same content exists.
// Usage: npm run runtime-image [-- --force] [-- --tag name:tag (the project image's name)]
// Honours DOCKER_HOST like the server does.
import path from 'node:path';
import Docker from 'dockerode';
import {
  buildRuntimeImage,
  DEFAULT_RUNTIME_IMAGE,
} from '../apps/server/src/services/containers/index.ts';

const root = path.resolve(import.meta.dirname, '..');
const args = process.argv.slice(2);
const tagIndex = args.indexOf('--tag');
const tag =
  tagIndex >= 0
    ? args[tagIndex + 1]
    : (process.env.VAPORFORM_RUNTIME_IMAGE ?? DEFAULT_RUNTIME_IMAGE);
try {
  const docker = new Docker();
  await docker.ping();
  const force = args.includes('--force');
  for (const result of [
    await buildRuntimeImage(docker, { tag, force }),
    await buildRuntimeImage(docker, {
      variant: 'server',
      force,
      addonsFrom: path.join(root, 'node_modules'),
    }),
  ]) {
    console.log(
      `${result.built ? 'built' : 'up to date'}: ${result.image} (${result.versionTag}) in ${result.seconds} s`,
    );
  }
} catch (err) {
  console.error(`runtime-image: ${(err as Error).message}`);
  process.exit(1);
}
