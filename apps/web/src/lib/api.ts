import type { Session, SessionStore } from './session.ts';
import type {
  Activity,
  ChatMessage,
  Container,
  FileContent,
  FileEntry,
  FileVersion,
  Invitation,
  Member,
  Project,
  ProjectConfig,
  Role,
  SearchResult,
  TemplateSummary,
  User,
} from './types.ts';

/** An error answered by the API in the contract's shape `{error:{code,message,details?}}`. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

interface RequestOptions {
  body?: unknown;
  /** Send without the access token (sign-in routes). */
  anonymous?: boolean;
  signal?: AbortSignal;
  /** Return the Response as is (streams, zips). */
  raw?: boolean;
  headers?: Record<string, string>;
}

/** Encodes a relative file path for the `{path}` part of a files route (slashes stay). */
export function encodePath(path: string): string {
  return path.split('/').map(encodeURIComponent).join('/');
}

/**
 * The IDE's client of the Vaporform API: adds the access token, refreshes it silently (once for
 * all tabs, see SessionStore) and retries once on 401; turns error bodies into ApiError.
 */
export class Api {
  readonly baseUrl: string;
  readonly session: SessionStore;

  constructor(session: SessionStore, baseUrl = '') {
    this.session = session;
    this.baseUrl = baseUrl.replace(/\/$/, '');
  }

  /** A valid access token, refreshed first when it is about to expire. */
  async accessToken(): Promise<string | null> {
    const s = this.session.get();
    if (!s) return null;
    if (s.expiresAt - Date.now() > 30_000) return s.token;
    return (await this.refresh())?.token ?? null;
  }

  /** Rotates the token pair (shared across tabs); null when the session is over. */
  refresh(): Promise<Session | null> {
    return this.session.refresh(async (refreshToken) => {
      const res = await fetch(`${this.baseUrl}/api/auth/refresh`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ refreshToken }),
      });
      if (!res.ok) return { ok: false, status: res.status };
      const body = (await res.json()) as { token: string; refreshToken: string; expiresIn: number };
      return { ok: true, ...body };
    });
  }

  /** Performs a request; JSON in, JSON out. @throws ApiError */
  async request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    const res = await this.fetchRaw(method, path, opts);
    if (opts.raw) return res as T;
    if (res.status === 204) return undefined as T;
    const text = await res.text();
    return (text ? JSON.parse(text) : undefined) as T;
  }

  /** Like request, but returns the successful Response. @throws ApiError */
  async fetchRaw(method: string, path: string, opts: RequestOptions = {}): Promise<Response> {
    const send = async (token: string | null) => {
      const headers: Record<string, string> = { ...opts.headers };
      if (token) headers.authorization = `Bearer ${token}`;
      let body: BodyInit | undefined;
      if (opts.body instanceof Blob || opts.body instanceof ArrayBuffer) {
        body = opts.body;
      } else if (opts.body !== undefined) {
        headers['content-type'] = 'application/json';
        body = JSON.stringify(opts.body);
      }
      return fetch(`${this.baseUrl}${path}`, {
        method,
        headers,
        body,
        ...(opts.signal ? { signal: opts.signal } : {}),
      });
    };
    let res = await send(opts.anonymous ? null : await this.accessToken());
    if (res.status === 401 && !opts.anonymous && this.session.get()) {
      const code = await peekCode(res.clone());
      if (code !== 'mfa_required') {
        const fresh = await this.refresh();
        if (!fresh) throw await toError(res);
        res = await send(fresh.token);
        if (res.status === 401) this.session.clear('expired');
      }
    }
    if (!res.ok) throw await toError(res);
    return res;
  }

  // --- auth -------------------------------------------------------------------------------

  /** Creates an account. */
  register(input: { email: string; password: string; name: string }): Promise<{ user: User }> {
    return this.request('POST', '/api/auth/register', { body: input, anonymous: true });
  }

  /** Signs in and stores the session. @throws ApiError 401 mfa_required when a code is needed */
  async login(input: { email: string; password: string; totp?: string }): Promise<Session> {
    const r = await this.request<{
      token: string;
      refreshToken: string;
      expiresIn: number;
      user: User;
    }>('POST', '/api/auth/login', { body: input, anonymous: true });
    const session: Session = {
      token: r.token,
      refreshToken: r.refreshToken,
      expiresAt: Date.now() + r.expiresIn * 1000,
      user: r.user,
    };
    this.session.set(session);
    return session;
  }

  /** Ends the session on the server and forgets it here. */
  async logout(): Promise<void> {
    const s = this.session.get();
    try {
      if (s)
        await this.request('POST', '/api/auth/logout', { body: { refreshToken: s.refreshToken } });
    } catch {
      // Signed out here whatever the server says.
    }
    this.session.clear('logout');
  }

  me(): Promise<{ user: User }> {
    return this.request('GET', '/api/auth/me');
  }

  mfaSetup(): Promise<{ secret: string; otpauthUrl: string }> {
    return this.request('POST', '/api/auth/mfa/setup');
  }

  mfaEnable(code: string): Promise<void> {
    return this.request('POST', '/api/auth/mfa/enable', { body: { code } });
  }

  // --- projects ---------------------------------------------------------------------------

  listProjects(q?: string): Promise<{ projects: Project[] }> {
    return this.request('GET', `/api/projects${q ? `?q=${encodeURIComponent(q)}` : ''}`);
  }

  getProject(id: string): Promise<{ project: Project }> {
    return this.request('GET', `/api/projects/${id}`);
  }

  createProject(input: {
    name: string;
    description?: string;
    type?: string;
    templateId?: string;
    config?: ProjectConfig;
  }): Promise<{ project: Project }> {
    return this.request('POST', '/api/projects', { body: input });
  }

  deleteProject(id: string): Promise<void> {
    return this.request('DELETE', `/api/projects/${id}`);
  }

  listMembers(id: string): Promise<{ members: Member[] }> {
    return this.request('GET', `/api/projects/${id}/members`);
  }

  /** Adds the account with `email`, or invites the email when it has none (202 `{invitation}`). */
  addMember(
    id: string,
    email: string,
    role: Exclude<Role, 'owner'>,
  ): Promise<{ member: Member } | { invitation: Invitation }> {
    return this.request('POST', `/api/projects/${id}/members`, { body: { email, role } });
  }

  listInvitations(id: string): Promise<{ invitations: Invitation[] }> {
    return this.request('GET', `/api/projects/${id}/invitations`);
  }

  revokeInvitation(id: string, invitationId: string): Promise<void> {
    return this.request('DELETE', `/api/projects/${id}/invitations/${invitationId}`);
  }

  changeMember(id: string, userId: string, role: Exclude<Role, 'owner'>): Promise<unknown> {
    return this.request('PATCH', `/api/projects/${id}/members/${userId}`, { body: { role } });
  }

  removeMember(id: string, userId: string): Promise<void> {
    return this.request('DELETE', `/api/projects/${id}/members/${userId}`);
  }

  activity(id: string, limit = 20): Promise<{ activity: Activity[] }> {
    return this.request('GET', `/api/projects/${id}/activity?limit=${limit}`);
  }

  listTemplates(): Promise<{ templates: TemplateSummary[] }> {
    return this.request('GET', '/api/templates', { anonymous: true });
  }

  // --- files ------------------------------------------------------------------------------

  listFiles(id: string): Promise<{ files: FileEntry[] }> {
    return this.request('GET', `/api/projects/${id}/files`);
  }

  readFile(id: string, path: string): Promise<FileContent> {
    return this.request('GET', `/api/projects/${id}/files/${encodePath(path)}`);
  }

  /** Writes a file; with `baseVersion` a stale write is refused. @throws ApiError 409 */
  writeFile(
    id: string,
    path: string,
    content: string,
    opts: { baseVersion?: number; encoding?: 'utf-8' | 'base64' } = {},
  ): Promise<{ file: FileEntry }> {
    return this.request('PUT', `/api/projects/${id}/files/${encodePath(path)}`, {
      body: { content, ...opts },
    });
  }

  deleteFile(id: string, path: string): Promise<void> {
    return this.request('DELETE', `/api/projects/${id}/files/${encodePath(path)}`);
  }

  moveFile(id: string, from: string, to: string): Promise<{ file: FileEntry }> {
    return this.request('POST', `/api/projects/${id}/move`, { body: { from, to } });
  }

  history(id: string, path: string): Promise<{ versions: FileVersion[] }> {
    return this.request('GET', `/api/projects/${id}/history/${encodePath(path)}`);
  }

  readVersion(
    id: string,
    path: string,
    version: number,
  ): Promise<{ path: string; version: number; content: string; encoding: string }> {
    return this.request(
      'GET',
      `/api/projects/${id}/history/${encodePath(path)}?version=${version}`,
    );
  }

  restore(id: string, path: string, version: number): Promise<{ file: FileEntry }> {
    return this.request('POST', `/api/projects/${id}/restore`, { body: { path, version } });
  }

  search(id: string, q: string): Promise<{ results: SearchResult[] }> {
    return this.request('GET', `/api/projects/${id}/search?q=${encodeURIComponent(q)}`);
  }

  /** The project as a zip (Blob). */
  async archive(id: string): Promise<Blob> {
    const res = await this.fetchRaw('GET', `/api/projects/${id}/archive`);
    return res.blob();
  }

  importZip(id: string, zip: Blob): Promise<{ imported: number }> {
    return this.request('POST', `/api/projects/${id}/import`, {
      body: zip,
      headers: { 'content-type': 'application/zip' },
    });
  }

  // --- containers and preview ---------------------------------------------------------------

  container(id: string): Promise<{ container: Container }> {
    return this.request('GET', `/api/containers/${id}`);
  }

  /** The caller's containers (a project without one is simply absent: no 404). */
  containers(): Promise<{ containers: Container[] }> {
    return this.request('GET', '/api/containers');
  }

  containerAction(
    id: string,
    action: 'start' | 'stop' | 'restart' | 'rebuild',
  ): Promise<{ success: boolean; container: Container }> {
    return this.request('POST', `/api/containers/${id}/${action}`);
  }

  /** A snapshot of the dev server's recent output. */
  async containerLogs(id: string): Promise<string> {
    const res = await this.fetchRaw('GET', `/api/containers/${id}/logs?follow=false`);
    const text = await res.text();
    // SSE snapshot: keep the data lines' payloads.
    if (/^(data|event|id):/m.test(text)) {
      return text
        .split('\n')
        .filter((l) => l.startsWith('data:'))
        .map((l) => {
          const payload = l.slice(5).trimStart();
          try {
            const parsed = JSON.parse(payload) as { line?: string; text?: string } | string;
            return typeof parsed === 'string' ? parsed : (parsed.line ?? parsed.text ?? payload);
          } catch {
            return payload;
          }
        })
        .join('\n');
    }
    return text;
  }

  previewToken(id: string): Promise<{ token: string; url: string; expiresAt: string }> {
    return this.request('POST', `/api/projects/${id}/preview-token`);
  }

  // --- secrets ------------------------------------------------------------------------------

  listIntegrations(id: string): Promise<{ integrations: Record<string, unknown>[] }> {
    return this.request('GET', `/api/projects/${id}/integrations`);
  }

  putIntegration(id: string, service: string, apiKey: string): Promise<unknown> {
    return this.request('PUT', `/api/projects/${id}/integrations/${encodeURIComponent(service)}`, {
      body: { apiKey },
    });
  }

  deleteIntegration(id: string, service: string): Promise<void> {
    return this.request(
      'DELETE',
      `/api/projects/${id}/integrations/${encodeURIComponent(service)}`,
    );
  }

  envNames(id: string): Promise<{ names: string[] }> {
    return this.request('GET', `/api/projects/${id}/env`);
  }

  putEnv(id: string, vars: Record<string, string>): Promise<{ names: string[] }> {
    return this.request('PUT', `/api/projects/${id}/env`, { body: { vars } });
  }

  // --- AI -----------------------------------------------------------------------------------

  chatHistory(id: string): Promise<{ messages: ChatMessage[] }> {
    return this.request('GET', `/api/projects/${id}/chat`);
  }

  revertChangeset(id: string, changesetId: string): Promise<{ reverted: string[] }> {
    return this.request('POST', `/api/projects/${id}/changesets/${changesetId}/revert`);
  }

  /** Starts a "describe it to the AI" generation. */
  claudeProcess(projectId: string, message: string): Promise<{ requestId: string }> {
    return this.request('POST', '/api/claude/process', {
      body: { projectId, message, type: 'create' },
    });
  }
}

async function peekCode(res: Response): Promise<string | undefined> {
  try {
    return ((await res.json()) as { error?: { code?: string } }).error?.code;
  } catch {
    return undefined;
  }
}

async function toError(res: Response): Promise<ApiError> {
  let body: { error?: { code?: string; message?: string; details?: unknown } } | undefined;
  try {
    body = (await res.json()) as typeof body;
  } catch {
    body = undefined;
  }
  return new ApiError(
    res.status,
    body?.error?.code ?? (res.status === 404 ? 'not_found' : 'http_error'),
    body?.error?.message ?? `The server answered ${res.status}`,
    body?.error?.details,
  );
}
