export { InfrastructureService, TERRAFORM_DIR, stateSchema } from './service.ts';
export type {
  Deployment,
  DeploymentVariables,
  DriftChange,
  InfraEvent,
  InfrastructureServiceDeps,
  Machine,
  MachineApp,
  Run,
  AgentHooks,
} from './service.ts';
