export { AgentService, AGENT_APP_DIR, AGENT_PATH, localBootstrap } from './service.ts';
export type {
  AgentServiceDeps,
  CommandEvent,
  CommandInput,
  CommandResult,
  CommandStatus,
} from './service.ts';
export { createAgentRoutes } from './routes.ts';
