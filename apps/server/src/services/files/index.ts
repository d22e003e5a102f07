export { workspaceDir } from './workspace-path.ts';
