export { ContainersService, detectRun, portAnswers } from './service.ts';
export type {
  ContainerInfo,
  ContainerStatusEvent,
  ContainersServiceDeps,
  ReconcileReport,
} from './service.ts';
export type {
  ContainerRuntime,
  LogOptions,
  RuntimeInstance,
  RuntimeKind,
  RuntimeSpec,
  RuntimeStats,
  TtySession,
} from './runtime.ts';
export { DockerRuntime, POOL_PORT } from './docker-runtime.ts';
export type { DockerRuntimeOptions } from './docker-runtime.ts';
export { ProcessRuntime, freePort } from './process-runtime.ts';
export { dockerClient, dockerAnswers, findBwrap, selectRuntime } from './select-runtime.ts';
export type { DockerTls, RuntimeChoice } from './select-runtime.ts';
export { ContainersStore } from './store.ts';
export {
  buildRuntimeImage,
  DEFAULT_RUNTIME_IMAGE,
  followBuild,
  imageExists,
  RUNTIME_UID,
  SERVER_BASE_IMAGE,
} from './runtime-image.ts';
export type { RuntimeImageResult } from './runtime-image.ts';
