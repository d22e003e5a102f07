export { AiService } from './service.ts';
export type {
  AiSecrets,
  AiServiceDeps,
  BeforeTurnHook,
  ChatPosition,
  ChatEvent,
  ChatMessage,
  ClaudeResponse,
  CommandRun,
  FileChange,
  RequestType,
  RequestView,
} from './service.ts';
export type { AiActor, AiFileState, AiFiles, AiRuntime, CommandResult } from './host.ts';
export { AnthropicProvider, OpenAiProvider, ProviderError, createProvider } from './providers.ts';
export type { ModelProvider, ProviderConfig } from './providers.ts';
export { toolSpecs } from './tools.ts';
export type { Changeset, ChangesetFile } from './changesets.ts';
export type { ChangesetReview, HunkState, ReviewHunk } from './review.ts';
export { filesHost } from './files-host.ts';
export { runtimeHost } from './runtime-host.ts';
export type { ContainersLike } from './runtime-host.ts';
