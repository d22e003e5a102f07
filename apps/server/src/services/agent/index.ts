export { AgentService, AGENT_APP_DIR, AGENT_PATH, localBootstrap } from './service.ts';
export type {
  AgentServiceDeps,
  CommandEvent,
  CommandInput,
  CommandResult,
  CommandStatus,
  DeployResult,
  DeployView,
} from './service.ts';
