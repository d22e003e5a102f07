import type { Schemas } from '@vaporform/sdk';
import { inject } from 'vitest';
import { ApiConnection, unwrap } from '../src/lib/client.ts';
import { DraftStore } from '../src/lib/drafts.ts';
import { httpFiles, type FileAccess } from '../src/lib/files.ts';
import { SessionStore } from '../src/lib/session.ts';

/** An in-memory Storage (each simulated browser gets its own). */
export class MemoryStorage implements Storage {
  #items = new Map<string, string>();
  get length(): number {
    return this.#items.size;
  }
  clear(): void {
    this.#items.clear();
  }
  getItem(key: string): string | null {
    return this.#items.get(key) ?? null;
  }
  key(index: number): string | null {
    return [...this.#items.keys()][index] ?? null;
  }
  removeItem(key: string): void {
    this.#items.delete(key);
  }
  setItem(key: string, value: string): void {
    this.#items.set(key, String(value));
  }
}

/** One simulated browser: its own storage, session, API client and drafts. */
export interface Browser {
  storage: MemoryStorage;
  api: ApiConnection;
  /** Files over HTTP as this browser's user. */
  files: FileAccess;
  drafts: DraftStore;
}

/** A browser signed in as a new user on the real server. */
export async function newUser(storage = new MemoryStorage()): Promise<Browser & { email: string }> {
  const api = new ApiConnection(new SessionStore(storage), inject('vfServerUrl'));
  const email = `u${Date.now()}${Math.random().toString(36).slice(2, 8)}@example.com`;
  unwrap(
    await api.client.POST('/api/auth/register', {
      body: { email, password: 'correct horse battery', name: 'Test User' },
    }),
  );
  await api.login({ email, password: 'correct horse battery' });
  return {
    storage,
    api,
    files: httpFiles(api.client),
    drafts: new DraftStore(storage, api.session.get()!.user.id),
    email,
  };
}

/** Another browser signed in as an existing user. */
export async function signIn(email: string, storage = new MemoryStorage()): Promise<Browser> {
  const api = new ApiConnection(new SessionStore(storage), inject('vfServerUrl'));
  await api.login({ email, password: 'correct horse battery' });
  return {
    storage,
    api,
    files: httpFiles(api.client),
    drafts: new DraftStore(storage, api.session.get()!.user.id),
  };
}

/** Creates a project as `b`'s user. @throws ApiError */
export async function createProject(
  b: Browser,
  body: { name: string; templateId?: string },
): Promise<Schemas['Project']> {
  return unwrap(await b.api.client.POST('/api/projects', { body })).project;
}

/** Adds `email` to the project with `role`, as `b`'s user (owner or admin). @throws ApiError */
export async function addMember(
  b: Browser,
  projectId: string,
  email: string,
  role: 'admin' | 'editor' | 'viewer',
): Promise<void> {
  unwrap(
    await b.api.client.POST('/api/projects/{id}/members', {
      params: { path: { id: projectId } },
      body: { email, role },
    }),
  );
}
