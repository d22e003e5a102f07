// Builds the local runtime image for project containers from this machine's own files (node,
// npm, a shell, coreutils): no registry needed. Skips the build when an image with the same
// content exists. Usage: npm run runtime-image [-- --force] [-- --tag name:tag]
// Honours DOCKER_HOST like the server does.
import Docker from 'dockerode';
import {
  buildRuntimeImage,
  DEFAULT_RUNTIME_IMAGE,
} from '../apps/server/src/services/containers/index.ts';

const args = process.argv.slice(2);
const tagIndex = args.indexOf('--tag');
const tag =
  tagIndex >= 0
    ? args[tagIndex + 1]
    : (process.env.VAPORFORM_RUNTIME_IMAGE ?? DEFAULT_RUNTIME_IMAGE);
try {
  const docker = new Docker();
  await docker.ping();
  const result = await buildRuntimeImage(docker, { tag, force: args.includes('--force') });
  console.log(
    `${result.built ? 'built' : 'up to date'}: ${result.image} (${result.versionTag}) in ${result.seconds} s`,
  );
} catch (err) {
  console.error(`runtime-image: ${(err as Error).message}`);
  process.exit(1);
}
