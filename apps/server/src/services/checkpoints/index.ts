export { CheckpointsService } from './service.ts';
export type {
  Checkpoint,
  CheckpointChat,
  CheckpointKind,
  CheckpointsServiceDeps,
  RestoreOutcome,
} from './service.ts';
