// Moved to common/bus.ts (shared infrastructure below the services). This shim keeps
// uncommitted work that deep-imports it compiling; import from common/bus.ts instead.
export { createEventBus, InProcessBus, RedisBus } from '../../common/bus.ts';
export type { EventBus } from '../../common/bus.ts';
