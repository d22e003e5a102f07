export { createEventBus, InProcessBus, RedisBus } from './bus.ts';
export type { EventBus } from './bus.ts';
export { ProjectSocketHub, projectChannel } from './project-socket.ts';
export type { ProjectEvent } from './project-socket.ts';
export { requireIdeOrigin } from './socket-origin.ts';
