/**
 * The typed Vaporform API client: openapi-fetch over the types generated from the committed
 * snapshot of `/openapi.json` (`src/schema.ts`, `npm run contract`).
 * @example
 *   const api = createVaporformClient({ baseUrl: 'http://localhost:4000', fetch: authedFetch });
 *   const { data, error } = await api.GET('/api/projects/{id}', { params: { path: { id } } });
 */
import createClient, { type Client, type ClientOptions } from 'openapi-fetch';
import type { components, operations, paths } from './schema.ts';

export type { components, operations, paths };

/** A client for every JSON route of the contract. */
export type VaporformClient = Client<paths>;

/** The named schemas of the document (`Schemas['Project']`…). */
export type Schemas = components['schemas'];

/** The contract's error body: `{error: {code, message, details?}}`. */
export interface ApiErrorBody {
  error: { code: string; message: string; details?: unknown };
}

/** Makes a client; `baseUrl` is the server's origin (paths already start with `/api`). */
export function createVaporformClient(options: ClientOptions = {}): VaporformClient {
  return createClient<paths>(options);
}

/** An error answer of the API, carrying the contract's code and message. */
export class VaporformApiError extends Error {
  override readonly name = 'VaporformApiError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
  }
}

/** True when `body` has the contract's error shape. */
export function isApiErrorBody(body: unknown): body is ApiErrorBody {
  const error = (body as { error?: { code?: unknown; message?: unknown } } | null)?.error;
  return typeof error?.code === 'string' && typeof error.message === 'string';
}

/**
 * The data of an openapi-fetch result, or a `VaporformApiError` thrown with the contract's
 * message (`unexpected_response` when the body is not the contract's error shape).
 * @throws VaporformApiError
 */
export function unwrap<T>(result: { data?: T; error?: unknown; response: Response }): T {
  if (result.response.ok) return result.data as T;
  throw toApiError(result.response.status, result.error);
}

/** A `VaporformApiError` from a status and a parsed (or raw) error body. */
export function toApiError(status: number, body: unknown): VaporformApiError {
  if (isApiErrorBody(body)) {
    return new VaporformApiError(status, body.error.code, body.error.message, body.error.details);
  }
  return new VaporformApiError(
    status,
    'unexpected_response',
    `the server answered ${status}${typeof body === 'string' && body ? `: ${body.slice(0, 200)}` : ''}`,
  );
}

export {
  assistantChatMessage,
  chatEvent,
  containerStatusEvent,
  fileChangedEvent,
  fileChangesOf,
  filesChangedEvent,
  isSessionChatMessage,
  parseProjectEvent,
  presenceEvent,
  projectEvent,
  projectEventOf,
  projectSocketClientMessage,
  reviewChangedEvent,
  sessionChatMessage,
  socketCloseCodes,
  terminalControlFrame,
  userEvent,
} from './events.ts';
export type {
  AssistantChatMessage,
  ProjectEvent,
  ProjectEventData,
  ProjectEventType,
  ProjectSocketClientMessage,
  SessionChatMessage,
  TerminalControlFrame,
  UserEvent,
} from './events.ts';
export {
  AGENT_VERSION,
  agentMessage,
  parseAgentMessage,
  parseServerMessage,
  serverMessage,
} from './agent-protocol.ts';
export type { AgentMessage, DeployCommit, ExecRequest, ServerMessage } from './agent-protocol.ts';
export type { Middleware } from 'openapi-fetch';
