import { inject } from 'vitest';
import { Api } from '../src/lib/api.ts';
import { DraftStore } from '../src/lib/drafts.ts';
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
  api: Api;
  drafts: DraftStore;
}

/** A browser signed in as a new user on the real server. */
export async function newUser(storage = new MemoryStorage()): Promise<Browser & { email: string }> {
  const api = new Api(new SessionStore(storage), inject('vfServerUrl'));
  const email = `u${Date.now()}${Math.random().toString(36).slice(2, 8)}@example.com`;
  await api.register({ email, password: 'correct horse battery', name: 'Test User' });
  await api.login({ email, password: 'correct horse battery' });
  return { storage, api, drafts: new DraftStore(storage, api.session.get()!.user.id), email };
}

/** Another browser signed in as an existing user. */
export async function signIn(email: string, storage = new MemoryStorage()): Promise<Browser> {
  const api = new Api(new SessionStore(storage), inject('vfServerUrl'));
  await api.login({ email, password: 'correct horse battery' });
  return { storage, api, drafts: new DraftStore(storage, api.session.get()!.user.id) };
}
