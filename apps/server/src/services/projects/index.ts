export { ProjectsService, mergeConfig } from './service.ts';
export type {
  AddMemberResult,
  CreateProjectInput,
  CreatedHook,
  ProjectRecord,
  RuntimeStatePatch,
  DeleteHook,
  GrantableRole,
  Invitation,
  Member,
  MembershipChange,
  Project,
  ProjectConfig,
  ProjectHealth,
  ProjectsServiceDeps,
  ProjectStatus,
  UpdateProjectInput,
} from './service.ts';
export { createProjectAccess, roleAtLeast, roles } from './access.ts';
export type { ProjectAccess, Role } from './access.ts';
export { ProjectName, ProjectSchema } from './schemas.ts';
