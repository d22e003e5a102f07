// One project's dev server must not reach another project's preview through cookies: it runs
// on the process runtime here (a real dev server behind the real proxy), as an attacker would.
import { writeFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import path from 'node:path';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, createTestApp, listen, registerAndLogin, type TestApp } from '../../../test/app.ts';
import {
  addMember,
  createProject,
  openSocket,
  previewCookie,
  previewHost,
  rawRequest,
  writeDevServer,
  type Session,
} from '../../../test/docker-projects.ts';
import { sanitiseSetCookie } from './service.ts';

/**
 * The attacker's dev server: every response (and its hot-reload upgrade) tries to plant cookies
 * on every preview origin (`Domain=preview.localhost`), to pass as Vaporform (`vf_*`), and to
 * wipe the site's cookies.
 */
const attackerServerSource = `import { createServer } from 'node:http';
import { createHash } from 'node:crypto';
const port = Number(process.env.PORT ?? 3000);
const planted = [
  'vf_preview=planted; Domain=preview.localhost; Path=/',
  'tracker=mallory; Domain=preview.localhost; Path=/',
  'wide=1; Path=/; domain=.localhost; SameSite=Lax',
  '__Host-vf_preview=prefixed; Path=/; Secure',
  '=vf_preview=nameless; Domain=preview.localhost; Path=/',
  'VF_Session=upper; Path=/',
  'app_session=ok; Path=/; HttpOnly',
];
createServer((req, res) => {
  res.writeHead(200, {
    'content-type': 'text/html',
    'set-cookie': planted,
    'clear-site-data': '"cookies"',
  });
  res.end('<h1>attacker</h1>');
})
  .on('upgrade', (req, socket) => {
    const accept = createHash('sha1')
      .update(req.headers['sec-websocket-key'] + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11')
      .digest('base64');
    socket.write('HTTP/1.1 101 Switching Protocols\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\n' +
      'Sec-WebSocket-Accept: ' + accept + '\\r\\n' +
      planted.map((c) => 'Set-Cookie: ' + c + '\\r\\n').join('') + '\\r\\n');
    socket.on('error', () => {});
  })
  .listen(port, '0.0.0.0', () => console.log('listening on ' + port));
`;

let t: TestApp;
let server: Awaited<ReturnType<typeof listen>>;
let mallory: Session;
let alice: Session;
let attacker: string;
let victim: string;

/** The name a browser files a Set-Cookie line under (a nameless cookie is sent bare). */
function cookieNameSent(line: string): string {
  const pair = line.split(';')[0]!;
  return pair.includes('=') ? pair.replace(/^\s*=/, '').split('=')[0]!.trim() : pair.trim();
}

beforeAll(async () => {
  t = await createTestApp({
    VAPORFORM_RUNTIME: 'process',
    VAPORFORM_RECONCILE_SECONDS: '0',
    VAPORFORM_STATS_SECONDS: '0',
  });
  server = await listen(t);
  [mallory, alice] = await Promise.all([registerAndLogin(t.app), registerAndLogin(t.app)]);
  attacker = await createProject(t, mallory, 'Lure');
  writeFileSync(
    path.join(writeDevServer(t, attacker, '<h1>attacker</h1>'), 'server.js'),
    attackerServerSource,
  );
  // The lure: Alice is invited to look at Mallory's app.
  await addMember(t, mallory, attacker, alice, 'viewer');
  victim = await createProject(t, alice, 'Own');
  writeDevServer(t, victim, '<h1>alice</h1>');
  for (const [id, owner] of [
    [attacker, mallory],
    [victim, alice],
  ] as const) {
    const res = await call(t.app, 'POST', `/api/containers/${id}/start?wait=true`, {
      token: owner.token,
    });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
  }
}, 120_000);

afterAll(async () => {
  await t?.close();
  await server?.close();
});

describe('preview cookies', () => {
  it('keeps a dev server’s cookies on its own preview origin and never lets it set vf_*', async () => {
    const cookie = await previewCookie(t, server.port, attacker, alice);
    const res = await rawRequest(server.port, 'GET', '/', {
      host: previewHost(attacker, server.port),
      cookie,
    });
    expect(res.status).toBe(200);
    expect(res.body).toBe('<h1>attacker</h1>');
    const set = ([] as string[]).concat(res.headers['set-cookie'] ?? []);
    // Nothing reaches other previews (or the IDE): every cookie is host-only.
    for (const line of set) expect(line).not.toMatch(/;\s*domain\s*=/i);
    // Nothing passes for Vaporform's own cookies, in any spelling.
    expect(set.map(cookieNameSent).filter((n) => /^(__(host|secure)-)?vf_/i.test(n))).toEqual([]);
    // The app's own cookies still work, on its own origin.
    expect(set).toContain('app_session=ok; Path=/; HttpOnly');
    expect(set).toContain('tracker=mallory; Path=/');
    expect(set).toContain('wide=1; Path=/; SameSite=Lax');
    // Clear-Site-Data "cookies" would wipe the whole site's cookies: every preview's, the IDE's.
    expect(res.headers['clear-site-data']).toBeUndefined();
  }, 30_000);

  it('does the same on the hot-reload WebSocket’s 101 answer', async () => {
    const cookie = await previewCookie(t, server.port, attacker, alice);
    const upgrade = await new Promise<IncomingMessage>((resolve, reject) => {
      const ws = new WebSocket(`ws://127.0.0.1:${server.port}/_hmr`, {
        headers: { host: previewHost(attacker, server.port), cookie },
      });
      ws.once('upgrade', (res) => {
        resolve(res);
        setImmediate(() => ws.terminate());
      });
      ws.once('unexpected-response', (_req, res) => reject(new Error(`${res.statusCode}`)));
      ws.once('error', reject);
    });
    const set = ([] as string[]).concat(upgrade.headers['set-cookie'] ?? []);
    expect(set.length).toBeGreaterThan(0);
    for (const line of set) expect(line).not.toMatch(/;\s*domain\s*=/i);
    expect(set.map(cookieNameSent).filter((n) => /^(__(host|secure)-)?vf_/i.test(n))).toEqual([]);
  }, 30_000);

  it('admits a member whose browser also holds planted vf_preview cookies, in any order', async () => {
    // A page can still plant a parent-domain cookie from script (document.cookie); the browser
    // then sends several vf_preview to every preview, the planted ones possibly first.
    const own = (await previewCookie(t, server.port, victim, alice)).replace(/^vf_preview=/, '');
    const foreign = (await previewCookie(t, server.port, attacker, alice)).replace(
      /^vf_preview=/,
      '',
    );
    const host = previewHost(victim, server.port);
    for (const cookie of [
      `vf_preview=planted; vf_preview=${foreign}; tracker=mallory; vf_preview=${own}`,
      `vf_preview=${own}; vf_preview=planted`,
      // Many planted cookies (different paths) ahead of the real one do not push it out.
      `${Array.from({ length: 40 }, (_, i) => `vf_preview=p${i}`).join('; ')}; vf_preview=${own}`,
    ]) {
      const res = await rawRequest(server.port, 'GET', '/', { host, cookie });
      expect(res.status, res.body).toBe(200);
      expect(res.body).toBe('<h1>alice</h1>');
    }
    // Without a valid cookie for this very project, still no entry.
    const refused = await rawRequest(server.port, 'GET', '/', {
      host,
      cookie: `vf_preview=planted; vf_preview=${foreign}`,
    });
    expect(refused.status).toBe(401);
    expect(JSON.parse(refused.body).error.code).toBe('unauthenticated');
    // And no vf_* cookie, valid or planted, reaches the dev server; the app's own cookies do.
    const echoed = await rawRequest(server.port, 'GET', '/headers', {
      host,
      cookie: `vf_preview=planted; tracker=mallory; VF_other=1; vf_preview=${own}; app=1`,
    });
    expect(JSON.parse(echoed.body).cookie).toBe('tracker=mallory; app=1');
  }, 30_000);

  it('opens a preview’s hot-reload socket only from its own pages, not another project’s', async () => {
    const cookie = await previewCookie(t, server.port, victim, alice);
    const host = previewHost(victim, server.port);
    const url = `ws://127.0.0.1:${server.port}/_hmr`;
    // The attacker's preview page, framed in the same IDE, is sent the same cookies.
    for (const origin of [`http://${previewHost(attacker, server.port)}`, 'http://evil.example']) {
      await expect(openSocket(url, { host, cookie, origin })).rejects.toMatchObject({
        status: 403,
      });
    }
    const own = await openSocket(url, { host, cookie, origin: `http://${host}` });
    await own.waitFor(/hmr:connected/);
    own.ws.terminate();
  }, 30_000);

  it('rewrites Set-Cookie lines: Domain goes, vf_* cookies are dropped', () => {
    expect(sanitiseSetCookie('a=1; Domain=preview.localhost; Path=/; Secure')).toBe(
      'a=1; Path=/; Secure',
    );
    expect(sanitiseSetCookie('a=1;Domain=.localhost;domain=x;Path=/')).toBe('a=1;Path=/');
    expect(sanitiseSetCookie('vf_preview=x; Path=/')).toBeUndefined();
    expect(sanitiseSetCookie(' VF_x=1')).toBeUndefined();
    expect(sanitiseSetCookie('__Secure-vf_preview=x; Secure')).toBeUndefined();
    expect(sanitiseSetCookie('=vf_preview=x')).toBeUndefined();
    expect(sanitiseSetCookie('vf_preview')).toBeUndefined();
    expect(sanitiseSetCookie('app=vf_preview; Path=/')).toBe('app=vf_preview; Path=/');
  });
});
