export { createEventBus, InProcessBus, RedisBus } from './bus.ts';
export type { EventBus } from './bus.ts';
