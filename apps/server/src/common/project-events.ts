import { projectEventOf, type ProjectEventData, type ProjectEventType } from '@vaporform/sdk';
import type { EventBus } from './bus.ts';

/** The bus channel a project's events travel on: `project:<projectId>` (subscribe to it). */
export function projectChannel(projectId: string): string {
  return `project:${projectId}`;
}

/**
 * Publishes an event to every member's project socket, on every instance. The one way onto a
 * project channel: `type` and `data` must be a member of the contract's union
 * (`@vaporform/sdk` events.ts), so a wrong shape fails the typecheck.
 * @example await publishProjectEvent(bus, id, 'environment_changed', { names, restartRequired });
 */
export async function publishProjectEvent<T extends ProjectEventType>(
  bus: EventBus,
  projectId: string,
  type: T,
  data: ProjectEventData<T>,
): Promise<void> {
  await bus.publish(projectChannel(projectId), projectEventOf(type, data));
}
