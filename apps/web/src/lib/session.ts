import type { Schemas } from '@vaporform/sdk';

/** What a signed-in browser keeps: the token pair and who it belongs to. */
export interface Session {
  token: string;
  refreshToken: string;
  /** Epoch ms when the access token expires. */
  expiresAt: number;
  user: Schemas['User'];
}

/** Why the session went away (the login screen says so). */
export type SignOutReason = 'logout' | 'expired';

type Listener = (session: Session | null, reason?: SignOutReason) => void;

const key = 'vf.session';
const lockName = 'vf-refresh';

/** The refresh endpoint's answers the store understands. */
export type RefreshCall = (
  refreshToken: string,
) => Promise<
  | { ok: true; token: string; refreshToken: string; expiresIn: number }
  | { ok: false; status: number }
>;

/**
 * The token pair in localStorage, shared by every tab of the IDE. Refreshes are serialised
 * across tabs with the Web Locks API (or a localStorage lease where it is missing): the tab that
 * gets the lock first rotates the refresh token, the others find the new pair already stored.
 * The server answers 409 to a refresh that raced another rotation; the store then re-reads what
 * the winner stored instead of signing out.
 */
export class SessionStore {
  readonly #storage: Storage;
  readonly #listeners = new Set<Listener>();
  #inflight: Promise<Session | null> | undefined;
  #cache: { raw: string | null; session: Session | null } = { raw: null, session: null };

  constructor(storage: Storage = localStorage) {
    this.#storage = storage;
    if (typeof window !== 'undefined') {
      window.addEventListener('storage', (e) => {
        if (e.key !== key) return;
        const next = this.get();
        this.#emit(next, next ? undefined : 'logout');
      });
    }
  }

  /** The stored session, or null (the same object until the stored value changes). */
  get(): Session | null {
    const raw = this.#storage.getItem(key);
    if (raw === this.#cache.raw) return this.#cache.session;
    let session: Session | null = null;
    try {
      const s = raw ? (JSON.parse(raw) as Session) : null;
      session = s && typeof s.token === 'string' && typeof s.refreshToken === 'string' ? s : null;
    } catch {
      session = null;
    }
    this.#cache = { raw, session };
    return session;
  }

  /** Stores a new session (after login or refresh) and tells listeners. */
  set(session: Session): void {
    this.#storage.setItem(key, JSON.stringify(session));
    this.#emit(session);
  }

  /** Forgets the tokens (drafts and other local data stay). */
  clear(reason: SignOutReason): void {
    this.#storage.removeItem(key);
    this.#emit(null, reason);
  }

  /** Calls `listener` on every change, from this tab or another; returns an unsubscribe. */
  subscribe = (listener: Listener): (() => void) => {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  };

  /**
   * Rotates the refresh token once for every caller in every tab.
   * @returns the fresh session, or null when the session is over (then it is cleared).
   */
  refresh(call: RefreshCall): Promise<Session | null> {
    const seen = this.get()?.refreshToken;
    this.#inflight ??= this.#withLock(() => this.#refreshLocked(call, seen)).finally(() => {
      this.#inflight = undefined;
    });
    return this.#inflight;
  }

  async #refreshLocked(call: RefreshCall, seen: string | undefined): Promise<Session | null> {
    const current = this.get();
    if (!current) return null;
    // Another tab rotated while we waited for the lock: use its pair.
    if (seen !== undefined && current.refreshToken !== seen) return current;
    const result = await call(current.refreshToken);
    if (result.ok) {
      const next: Session = {
        ...current,
        token: result.token,
        refreshToken: result.refreshToken,
        expiresAt: Date.now() + result.expiresIn * 1000,
      };
      this.set(next);
      return next;
    }
    if (result.status === 409) {
      // Raced a rotation made elsewhere (a tab without the lock): wait for its pair to appear.
      for (let i = 0; i < 20; i++) {
        const again = this.get();
        if (!again) return null;
        if (again.refreshToken !== current.refreshToken) return again;
        await delay(100);
      }
      return null;
    }
    if (result.status === 401 || result.status === 400) this.clear('expired');
    return null;
  }

  async #withLock<T>(fn: () => Promise<T>): Promise<T> {
    const locks = typeof navigator !== 'undefined' ? navigator.locks : undefined;
    if (locks?.request) return locks.request(lockName, () => fn());
    return this.#withLease(fn);
  }

  /** A best-effort cross-tab lease in localStorage for browsers without Web Locks. */
  async #withLease<T>(fn: () => Promise<T>): Promise<T> {
    const leaseKey = 'vf.refresh-lease';
    const me = Math.random().toString(36).slice(2);
    for (let i = 0; i < 50; i++) {
      const lease = Number(this.#storage.getItem(leaseKey)?.split(':')[1] ?? 0);
      if (lease < Date.now()) {
        this.#storage.setItem(leaseKey, `${me}:${Date.now() + 5000}`);
        await delay(20);
        if (this.#storage.getItem(leaseKey)?.startsWith(me + ':')) break;
      }
      await delay(100);
    }
    try {
      return await fn();
    } finally {
      if (this.#storage.getItem(leaseKey)?.startsWith(me + ':')) this.#storage.removeItem(leaseKey);
    }
  }

  #emit(session: Session | null, reason?: SignOutReason): void {
    for (const l of this.#listeners) l(session, reason);
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
