import type { IncomingMessage } from 'node:http';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Hono, type Context } from 'hono';
import { compress } from 'hono/compress';

/** apps/web/dist, found from this file's place in the repository (not the working directory). */
export const defaultWebDist = fileURLToPath(new URL('../../../web/dist/', import.meta.url));

const types: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.ttf': 'font/ttf',
  '.wasm': 'application/wasm',
  '.map': 'application/json',
  '.txt': 'text/plain; charset=utf-8',
};

const notBuiltPage = `<!doctype html>
<html lang="en">
  <head><meta charset="utf-8" /><title>Vaporform: IDE not built</title></head>
  <body style="font-family: system-ui, sans-serif; max-width: 40em; margin: 10vh auto; line-height: 1.5">
    <h1>The web IDE is not built yet</h1>
    <p>The API is running (see <a href="/docs">/docs</a>), but <code>apps/web/dist</code> is missing.</p>
    <p>Build it with <code>npm run build:web</code> (or start the server with <code>npm start</code>,
      which builds it when needed), then reload this page.</p>
  </body>
</html>`;

/**
 * Serves the built IDE at `/`: files under `dist/`, hashed `/assets/*` cached for a year, and
 * `index.html` (never cached) for every other GET outside `/api` so client-side routes load.
 * A missing build answers a page saying how to build it. Mount after every other route.
 *
 * With `publicUrl`, a page asked for on another host (`127.0.0.1:4000` when the public URL is
 * `http://localhost:4000`) is redirected there: the IDE works only on its own origin (the
 * WebSockets' Origin check, the previews' cookies). `X-Forwarded-Host` counts only from
 * `trustedProxies`.
 */
export function createWebUiRoutes(
  distDir: string = defaultWebDist,
  options: { publicUrl?: string; trustedProxies?: readonly string[] } = {},
): Hono {
  const root = path.resolve(distDir);
  const publicOrigin = options.publicUrl ? new URL(options.publicUrl) : undefined;
  /** The public URL for this request's path, when the request came to another host. */
  const elsewhere = (c: Context): string | undefined => {
    if (!publicOrigin) return undefined;
    const host = servedHost(c, options.trustedProxies ?? []);
    if (!host || host.toLowerCase() === publicOrigin.host) return undefined;
    const url = new URL(c.req.url);
    return new URL(url.pathname + url.search, publicOrigin).toString();
  };
  const app = new Hono();
  app.use('*', compress());
  app.on(['GET', 'HEAD'], '*', async (c, next) => {
    const urlPath = c.req.path;
    if (urlPath === '/api' || urlPath.startsWith('/api/')) return next();
    let decoded: string;
    try {
      decoded = decodeURIComponent(urlPath);
    } catch {
      return next();
    }
    const file = path.resolve(root, '.' + path.posix.normalize(decoded));
    const inside = file === root || file.startsWith(root + path.sep);
    if (inside && file !== root && !decoded.includes('\0')) {
      const info = await stat(file).catch(() => undefined);
      if (info?.isFile()) {
        const body = await readFile(file);
        const immutable = decoded.startsWith('/assets/');
        return c.body(body, 200, {
          'Content-Type': types[path.extname(file)] ?? 'application/octet-stream',
          'Cache-Control': immutable ? 'public, max-age=31536000, immutable' : 'no-cache',
        });
      }
    }
    // A missing hashed asset is a 404, not the app (a stale tab must not get HTML for JS).
    if (decoded.startsWith('/assets/') || /\.(js|css|map|png|svg|ico|woff2?)$/.test(decoded)) {
      return next();
    }
    const there = elsewhere(c);
    if (there) return c.redirect(there, 302);
    const index = await readFile(path.join(root, 'index.html')).catch(() => undefined);
    if (!index) return c.html(notBuiltPage, 503, { 'Cache-Control': 'no-store' });
    return c.body(index, 200, {
      'Content-Type': 'text/html; charset=utf-8',
      'Cache-Control': 'no-cache',
    });
  });
  return app;
}

/** The host a request was sent to: `Host`, or `X-Forwarded-Host` from a trusted proxy. */
function servedHost(c: Context, trustedProxies: readonly string[]): string | undefined {
  const forwarded = c.req.header('x-forwarded-host');
  if (forwarded) {
    const peer = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming?.socket
      .remoteAddress;
    const normalised = peer?.startsWith('::ffff:') ? peer.slice(7) : peer;
    if (normalised && trustedProxies.includes(normalised)) {
      return forwarded.split(',')[0]!.trim();
    }
  }
  return c.req.header('host');
}
