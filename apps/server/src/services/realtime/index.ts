export { ProjectSocketHub } from './project-socket.ts';
export { createProjectSocketRoutes } from './routes.ts';
export { requireIdeOrigin } from './socket-origin.ts';
// The bus and the project channel live below the services now (common/bus.ts,
// common/project-events.ts); re-exported until every service imports them from there.
export { projectChannel } from '../../common/project-events.ts';
export type { EventBus } from '../../common/bus.ts';
