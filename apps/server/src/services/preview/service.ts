import { createHmac, randomUUID } from 'node:crypto';
import type { ClientRequest, IncomingMessage, ServerResponse } from 'node:http';
import { Readable, type Duplex } from 'node:stream';
import { createProxyServer } from 'http-proxy-3';
import type { Redis } from 'ioredis';
import { jwtVerify, SignJWT, errors as joseErrors } from 'jose';
import { errors } from '../../common/errors.ts';
import type { Logger } from '../../common/logger.ts';
import type { AuthService } from '../auth/index.ts';
import type { ProjectsService } from '../projects/index.ts';

/** The cookie that admits a member to one preview origin (host-only, HttpOnly). */
export const PREVIEW_COOKIE = 'vf_preview';
/** Path on the preview origin that trades a preview token for the cookie. */
export const PREVIEW_AUTH_PATH = '/__vaporform/preview-auth';

const TOKEN_TTL_SECONDS = 60;
const COOKIE_TTL_SECONDS = 8 * 3600;
const MEMBERSHIP_CACHE_MS = 5_000;
/**
 * Waits before trying a dev server again that refused or dropped a GET: a watcher restarting it
 * after a save is down for a moment, and the IDE reloads the preview at once (≈2 s in all).
 */
const RESTART_RETRY_MS = [20, 40, 80, 160, 320, 500, 500, 500];
const ISSUER = 'vaporform';
const TOKEN_AUDIENCE = 'vaporform-preview-token';
const COOKIE_AUDIENCE = 'vaporform-preview';
const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** `http://<projectId>.preview.<host of publicUrl>[:port]/`: the project's preview address. */
export function previewUrl(publicUrl: string, projectId: string): string {
  const url = new URL(publicUrl);
  const port = url.port ? `:${url.port}` : '';
  return `${url.protocol}//${projectId}.preview.${url.hostname}${port}/`;
}

/** An open preview WebSocket and whose it is. */
interface PreviewSocket {
  socket: Duplex;
  projectId: string;
  userId: string;
  sessionId: string;
}

/** Who a preview request is for. */
export interface PreviewCaller {
  userId: string;
  sessionId: string;
}

export interface PreviewServiceDeps {
  projects: ProjectsService;
  auth: AuthService;
  /** Where the project's dev server answers (always on 127.0.0.1), or undefined if not running. */
  target: (projectId: string) => Promise<{ host: string; port: number } | undefined>;
  /** Signing secret; preview keys are derived from it, never the access-token key itself. */
  secret: string;
  publicUrl: string;
  log: Logger;
  /**
   * With several instances: where a preview token is marked used, so that it is used once across
   * all of them (without it, in this instance's memory).
   */
  redis?: Redis;
}

/**
 * Serves each project's dev server at `http://<projectId>.preview.<host>/`, its own browser
 * origin, to members only: the IDE gets a short-lived token, the preview origin trades it for
 * an HttpOnly cookie scoped to that host, every request and WebSocket is checked against it.
 * Requests are routed by the validated Host alone and always go to that project's container on
 * 127.0.0.1; Vaporform's cookies and Authorization never reach the dev server, and the dev
 * server's cookies stay on its own preview origin (host-only, never `vf_*`).
 */
export class PreviewService {
  readonly #d: PreviewServiceDeps;
  readonly #key: Uint8Array;
  readonly #public: URL;
  readonly #proxy = createProxyServer({ ws: true, xfwd: false, changeOrigin: true });
  readonly #usedTokens = new Map<string, number>();
  readonly #revoked = new Map<string, number>();
  readonly #members = new Map<string, number>();
  readonly #sockets = new Set<PreviewSocket>();
  readonly #unsubscribe: () => void;
  readonly #stopMembership: () => void;

  constructor(deps: PreviewServiceDeps) {
    this.#d = deps;
    this.#key = createHmac('sha256', deps.secret).update('vaporform preview v1').digest();
    this.#public = new URL(deps.publicUrl);
    this.#proxy.on('error', (err, _req, res) => {
      deps.log.debug({ err: (err as Error).message }, 'preview proxy error');
      if (isResponse(res)) {
        if (!res.headersSent) {
          res.writeHead(502, { 'content-type': 'application/json' });
          res.end(
            JSON.stringify({
              error: { code: 'unavailable', message: 'The dev server did not answer' },
            }),
          );
        } else res.destroy();
      } else (res as Duplex | undefined)?.destroy();
    });
    // A dev server's cookies must stay on its own preview origin: see sanitiseSetCookie.
    this.#proxy.on('proxyRes', (proxyRes) => sanitiseResponseHeaders(proxyRes.headers));
    this.#proxy.on('proxyReqWs', (proxyReq: ClientRequest) => {
      // The 101 (or refusal) of a WebSocket upgrade is written from these events' headers.
      proxyReq.prependListener('upgrade', (res: IncomingMessage) =>
        sanitiseResponseHeaders(res.headers),
      );
      proxyReq.prependListener('response', (res: IncomingMessage) =>
        sanitiseResponseHeaders(res.headers),
      );
    });
    this.#unsubscribe = deps.auth.onSessionsRevoked((ids) => {
      const until = Date.now() + COOKIE_TTL_SECONDS * 1000;
      const ended = new Set(ids);
      for (const id of ids) this.#revoked.set(id, until);
      this.#endSockets((s) => ended.has(s.sessionId));
      for (const key of this.#members.keys()) {
        if (ids.some((id) => key.endsWith(`/${id}`))) this.#members.delete(key);
      }
    });
    // Any role may view a preview: only the end of a membership closes its sockets.
    this.#stopMembership = deps.projects.onMembershipChanged((change) => {
      if (change.role !== null) return;
      this.#endSockets((s) => s.projectId === change.projectId && s.userId === change.userId);
      const prefix = `${change.projectId}/${change.userId}/`;
      for (const key of this.#members.keys()) if (key.startsWith(prefix)) this.#members.delete(key);
    });
  }

  #endSockets(match: (s: PreviewSocket) => boolean): void {
    for (const s of this.#sockets) {
      if (!match(s)) continue;
      this.#sockets.delete(s);
      s.socket.destroy();
    }
  }

  /** `http://<projectId>.preview.<public host>[:port]` (no trailing slash). */
  previewOrigin(projectId: string): string {
    return previewUrl(this.#d.publicUrl, projectId).replace(/\/$/, '');
  }

  /**
   * The project a Host header names, when it is exactly `<uuid>.preview.<public host>` (any
   * port); undefined for every other host.
   */
  projectForHost(host: string | undefined): string | undefined {
    if (!host) return undefined;
    const hostname = host.toLowerCase().replace(/:\d+$/, '').replace(/\.$/, '');
    const suffix = `.preview.${this.#public.hostname.toLowerCase()}`;
    if (!hostname.endsWith(suffix)) return undefined;
    const id = hostname.slice(0, -suffix.length);
    return uuid.test(id) ? id : undefined;
  }

  /** True for any host under `.preview.<public host>`, valid project id or not. */
  isPreviewHost(host: string | undefined): boolean {
    if (!host) return false;
    const hostname = host.toLowerCase().replace(/:\d+$/, '').replace(/\.$/, '');
    return hostname.endsWith(`.preview.${this.#public.hostname.toLowerCase()}`);
  }

  /**
   * A one-time token (60 s) for the preview origin; the caller's role is checked by the route.
   */
  async issueToken(
    projectId: string,
    caller: PreviewCaller,
  ): Promise<{ token: string; url: string; expiresAt: string }> {
    const now = Math.floor(Date.now() / 1000);
    const token = await new SignJWT({ pid: projectId, sid: caller.sessionId })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject(caller.userId)
      .setIssuer(ISSUER)
      .setAudience(TOKEN_AUDIENCE)
      .setJti(randomUUID())
      .setIssuedAt(now)
      .setExpirationTime(now + TOKEN_TTL_SECONDS)
      .sign(this.#key);
    const url = `${this.previewOrigin(projectId)}${PREVIEW_AUTH_PATH}?token=${encodeURIComponent(token)}`;
    return { token, url, expiresAt: new Date((now + TOKEN_TTL_SECONDS) * 1000).toISOString() };
  }

  /**
   * Trades a preview token (once) for the cookie value of this project's preview origin.
   * @throws AppError unauthenticated for a bad, used, expired or foreign token; not_found when
   *   the caller is no longer a member.
   */
  async exchange(projectId: string, token: string | undefined): Promise<{ cookie: string }> {
    const claims = await this.#verify(token, TOKEN_AUDIENCE);
    if (!claims || claims.projectId !== projectId || !claims.jti) {
      throw errors.unauthenticated('The preview link is invalid or expired; open it again');
    }
    if (!(await this.#useToken(claims.jti))) {
      throw errors.unauthenticated('This preview link was already used; open it again');
    }
    await this.#requireMember(projectId, claims);
    const now = Math.floor(Date.now() / 1000);
    const value = await new SignJWT({ pid: projectId, sid: claims.sessionId })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject(claims.userId)
      .setIssuer(ISSUER)
      .setAudience(COOKIE_AUDIENCE)
      .setIssuedAt(now)
      .setExpirationTime(now + COOKIE_TTL_SECONDS)
      .sign(this.#key);
    return {
      cookie: `${PREVIEW_COOKIE}=${value}; Path=/; HttpOnly; Max-Age=${COOKIE_TTL_SECONDS}; ${this.#crossSiteAttributes()}`,
    };
  }

  /**
   * The IDE frames the preview, and the preview host is usually another site than the IDE's
   * (`<id>.preview.localhost` is not same-site with `localhost`), so the cookie must be sent in a
   * cross-site frame: `SameSite=None; Secure`, partitioned (CHIPS) so it also works where
   * third-party cookies are blocked. Browsers allow Secure cookies on http only for localhost
   * (and *.localhost); on another plain-http host the IDE and previews must share a site
   * (e.g. `ide.example.test` and `<id>.preview.ide.example.test`), and Lax is used.
   */
  #crossSiteAttributes(): string {
    const host = this.#public.hostname;
    const trustworthy =
      this.#public.protocol === 'https:' || host === 'localhost' || host.endsWith('.localhost');
    return trustworthy ? 'SameSite=None; Secure; Partitioned' : 'SameSite=Lax';
  }

  /**
   * The member behind a preview request's cookie. A browser may hold several `vf_preview`
   * cookies for this host (a page on a sibling origin can plant one for a parent domain, and it
   * may come first): each is tried, the first valid one for this project with a live session
   * wins.
   * @throws AppError unauthenticated without a valid cookie for this very project, not_found
   *   when the caller is not (or no longer) a member.
   */
  async authorize(projectId: string, cookieHeader: string | undefined): Promise<PreviewCaller> {
    let ended = false;
    // No cap on candidates: a cap would let planted cookies push the real one out. The header
    // size limit bounds the work, and a junk value fails before any signature check.
    for (const value of readCookies(cookieHeader, PREVIEW_COOKIE)) {
      const claims = await this.#verify(value, COOKIE_AUDIENCE);
      if (!claims || claims.projectId !== projectId) continue;
      if (
        this.#revoked.has(claims.sessionId) ||
        !(await this.#d.auth.isSessionActive(claims.sessionId, claims.userId))
      ) {
        ended = true;
        continue;
      }
      await this.#requireMember(projectId, claims);
      return { userId: claims.userId, sessionId: claims.sessionId };
    }
    if (ended) throw errors.unauthenticated('Your session has ended; sign in again');
    throw errors.unauthenticated('Open this preview from the Vaporform IDE to sign in to it');
  }

  /**
   * Proxies an HTTP request to the project's dev server (after {@link authorize}). A GET or HEAD
   * the dev server refuses or drops before answering (a watcher restarting it after a save) is
   * tried again for a moment instead of answering 502.
   */
  async proxyWeb(projectId: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
    let target = await this.#target(projectId);
    stripCredentials(req);
    const retryable = req.method === 'GET' || req.method === 'HEAD';
    let attempt = 0;
    const send = (): void => {
      this.#proxy.web(
        req,
        res,
        {
          target: `http://${target.host}:${target.port}`,
          // The request has no body, and its stream ended with the first attempt.
          ...(attempt > 0 ? { buffer: Readable.from([]) } : {}),
        },
        (err) => {
          const code = (err as NodeJS.ErrnoException).code;
          const wait = RESTART_RETRY_MS[attempt];
          if (
            retryable &&
            wait !== undefined &&
            (code === 'ECONNREFUSED' || code === 'ECONNRESET') &&
            !res.headersSent &&
            !res.destroyed
          ) {
            attempt++;
            setTimeout(() => {
              this.#target(projectId)
                .then((t) => ((target = t), send()))
                .catch((e: unknown) => this.#proxy.emit('error', e as Error, req, res));
            }, wait);
            return;
          }
          this.#proxy.emit('error', err, req, res);
        },
      );
    };
    send();
  }

  /** Proxies a WebSocket upgrade (hot reload) to the project's dev server. */
  async proxyWs(
    projectId: string,
    caller: PreviewCaller,
    req: IncomingMessage,
    socket: Duplex,
    head: Buffer,
  ): Promise<void> {
    const target = await this.#target(projectId);
    stripCredentials(req);
    const entry: PreviewSocket = { socket, projectId, ...caller };
    this.#sockets.add(entry);
    socket.once('close', () => this.#sockets.delete(entry));
    this.#proxy.ws(req, socket, head, { target: `ws://${target.host}:${target.port}` });
  }

  close(): void {
    this.#unsubscribe();
    this.#stopMembership();
    this.#endSockets(() => true);
    this.#proxy.close();
  }

  async #target(projectId: string): Promise<{ host: string; port: number }> {
    const target = await this.#d.target(projectId);
    if (!target) throw errors.unavailable('The project is not running; start it in the IDE');
    return target;
  }

  async #requireMember(
    projectId: string,
    claims: { userId: string; sessionId: string },
  ): Promise<void> {
    const key = `${projectId}/${claims.userId}/${claims.sessionId}`;
    const until = this.#members.get(key);
    if (until && until > Date.now()) return;
    await this.#d.projects.requireRole(projectId, claims.userId, 'viewer');
    this.#members.set(key, Date.now() + MEMBERSHIP_CACHE_MS);
  }

  async #verify(
    token: string | undefined,
    audience: string,
  ): Promise<
    { userId: string; sessionId: string; projectId: string; jti: string | undefined } | undefined
  > {
    if (!token) return undefined;
    try {
      const { payload } = await jwtVerify(token, this.#key, {
        issuer: ISSUER,
        audience,
        algorithms: ['HS256'],
      });
      if (
        typeof payload.sub !== 'string' ||
        typeof payload.sid !== 'string' ||
        typeof payload.pid !== 'string'
      ) {
        return undefined;
      }
      return {
        userId: payload.sub,
        sessionId: payload.sid,
        projectId: payload.pid,
        jti: payload.jti,
      };
    } catch (err) {
      if (err instanceof joseErrors.JOSEError || err instanceof TypeError) return undefined;
      throw err;
    }
  }

  /** Marks a token used: false when it already was (on any instance sharing the Redis). */
  async #useToken(jti: string): Promise<boolean> {
    this.#forgetExpired();
    if (this.#usedTokens.has(jti)) return false;
    this.#usedTokens.set(jti, Date.now() + TOKEN_TTL_SECONDS * 1000);
    if (!this.#d.redis) return true;
    try {
      const set = await this.#d.redis.set(
        `vaporform:preview-token:${jti}`,
        '1',
        'EX',
        TOKEN_TTL_SECONDS,
        'NX',
      );
      return set === 'OK';
    } catch (err) {
      // Redis down: this instance's memory still refuses a second use here.
      this.#d.log.warn({ err: (err as Error).message }, 'preview: token use not shared (redis)');
      return true;
    }
  }

  #forgetExpired(): void {
    const now = Date.now();
    for (const [k, until] of this.#usedTokens) if (until < now) this.#usedTokens.delete(k);
    for (const [k, until] of this.#revoked) if (until < now) this.#revoked.delete(k);
    for (const [k, until] of this.#members) if (until < now) this.#members.delete(k);
  }
}

/** One cookie's value from a Cookie header (the first, when there are several). */
export function readCookie(header: string | undefined, name: string): string | undefined {
  return readCookies(header, name)[0];
}

/** Every value a Cookie header carries under `name`, in order. */
export function readCookies(header: string | undefined, name: string): string[] {
  if (!header) return [];
  const values: string[] = [];
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) values.push(part.slice(eq + 1).trim());
  }
  return values;
}

/** Vaporform's own cookie names (and their prefixed forms), which no dev server may set. */
const ownCookie = /^(__(secure|host)-)?vf_/i;

/**
 * A dev server's `Set-Cookie` made safe for its preview origin, or undefined to drop it:
 * `Domain` is removed, so the cookie is host-only on `<id>.preview.<host>` instead of reaching
 * every project's preview (`Domain=preview.localhost`) or the IDE; a cookie named like
 * Vaporform's (`vf_*`) is dropped whole.
 */
export function sanitiseSetCookie(line: string): string | undefined {
  const [pair = '', ...attributes] = line.split(';');
  // A pair without `=` is a nameless cookie whose value the browser sends bare.
  const sent = pair.includes('=') ? pair.replace(/^\s*=/, '').trim() : pair.trim();
  if (ownCookie.test(sent)) return undefined;
  const kept = attributes.filter((a) => a.split('=')[0]!.trim().toLowerCase() !== 'domain');
  return [pair, ...kept].join(';');
}

/**
 * Applies {@link sanitiseSetCookie} to a dev server's response headers, and drops
 * `Clear-Site-Data` (its `cookies` directive clears the whole site's cookies: every preview's
 * and the IDE's).
 */
function sanitiseResponseHeaders(headers: IncomingMessage['headers']): void {
  delete headers['clear-site-data'];
  const cookies = headers['set-cookie'];
  if (!cookies) return;
  const kept = cookies.flatMap((c) => sanitiseSetCookie(c) ?? []);
  if (kept.length) headers['set-cookie'] = kept;
  else delete headers['set-cookie'];
}

/** Removes Vaporform's own credentials (cookies `vf_*`, Authorization) before forwarding. */
function stripCredentials(req: IncomingMessage): void {
  delete req.headers.authorization;
  delete req.headers['proxy-authorization'];
  const cookie = req.headers.cookie;
  if (cookie) {
    const kept = cookie
      .split(';')
      .map((c) => c.trim())
      .filter((c) => c && !ownCookie.test(c.replace(/^=\s*/, '')));
    if (kept.length) req.headers.cookie = kept.join('; ');
    else delete req.headers.cookie;
  }
  // Only what we decide: no forwarded-host games reach the app.
  delete req.headers['x-forwarded-host'];
}

function isResponse(value: unknown): value is ServerResponse {
  return typeof (value as ServerResponse | undefined)?.writeHead === 'function';
}
