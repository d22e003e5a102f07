export { workspaceDir } from './workspace-path.ts';
export { FilesService, fileSources } from './service.ts';
export type {
  Actor,
  ChangeOutcome,
  FileChange,
  FileChangedEvent,
  FileContent,
  FileLimits,
  FileMeta,
  FileOperation,
  FileSource,
  FilesServiceDeps,
  FileVersionContent,
  FileVersionMeta,
  SearchResult,
} from './service.ts';
export type { Encoding } from './content.ts';
export { checkFilePath, pathProblem, maxPathBytes } from './paths.ts';
export { defaultIgnore } from './workspace.ts';
