/// <reference lib="dom" />
/**
 * The web IDE's first screen in real Chromium (Debian's /usr/bin/chromium via playwright-core)
 * against the real server on loopback, each run in a fresh browser context:
 *   - baseline: navigating to the server's /healthz (browser + HTTP overhead, no app);
 *   - cold: the sign-in form interactive with an empty cache (HTML, JS, CSS downloaded);
 *   - warm: the same with the hashed assets cached (immutable) — a returning user;
 *   - dashboard: a signed-in user's project list rendered.
 * The names carry the JavaScript the first screen downloads (raw and gzip-compressed).
 * Bounded: BENCH_WEB_RUNS loads each (default 15).
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import type { Browser } from 'playwright-core';
import { launchChromium } from '../tests/e2e/chromium.ts';
import { repoRoot, startServer } from '../tests/e2e/server.ts';
import { summarise as summariseMs, type Result } from './results.ts';

const summarise = (name: string, samples: number[], errors = 0) =>
  summariseMs(name, samples, errors, 1);

const RUNS = Number(process.env.BENCH_WEB_RUNS ?? 15);

/** First-screen timings of the IDE. */
export async function webFirstScreenBench(): Promise<Result[]> {
  execFileSync(process.execPath, [path.join(repoRoot, 'scripts', 'ensure-web.mjs')], {
    stdio: 'inherit',
  });
  const server = await startServer();
  let browser: Browser | undefined;
  try {
    browser = await launchChromium();
    const b = browser;

    // A user for the dashboard runs.
    const email = `bench-${Date.now()}@example.com`;
    const password = 'correct horse battery';
    const api = `http://127.0.0.1:${server.port}/api`;
    const post = (url: string, body: unknown, token?: string) =>
      fetch(`${api}${url}`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          ...(token ? { authorization: `Bearer ${token}` } : {}),
        },
        body: JSON.stringify(body),
      }).then((r) => r.json() as Promise<any>);
    await post('/auth/register', { email, password, name: 'Bench' });
    const login = await post('/auth/login', { email, password });
    for (let i = 0; i < 5; i++) await post('/projects', { name: `bench-${i}` }, login.token);
    const session = JSON.stringify({
      token: login.token,
      refreshToken: login.refreshToken,
      expiresAt: Date.now() + login.expiresIn * 1000,
      user: login.user,
    });

    let jsRaw = 0;
    let jsWire = 0;
    async function measure(
      warm: boolean,
      ready: (page: import('playwright-core').Page) => Promise<unknown>,
      opts: { url?: string; signedIn?: boolean; countJs?: boolean } = {},
    ): Promise<number> {
      const context = await b.newContext();
      try {
        if (opts.signedIn) {
          await context.addInitScript(
            (s: string) => localStorage.setItem('vf.session', s),
            session,
          );
        }
        const page = await context.newPage();
        if (warm) {
          await page.goto(server.url + (opts.url ?? '/'));
          await ready(page);
        }
        if (opts.countJs) {
          page.on('response', async (res) => {
            if (!res.url().endsWith('.js')) return;
            jsRaw += (await res.body()).length;
            jsWire += (await res.request().sizes()).responseBodySize;
          });
        }
        const started = performance.now();
        await page.goto(server.url + (opts.url ?? '/'));
        await ready(page);
        return performance.now() - started;
      } finally {
        await context.close();
      }
    }

    const loginReady = (p: import('playwright-core').Page) =>
      p.getByRole('button', { name: 'Sign in' }).waitFor();
    const healthReady = (p: import('playwright-core').Page) => p.getByText('ok').waitFor();
    const dashReady = (p: import('playwright-core').Page) => p.getByText('bench-4').waitFor();

    const baseline: number[] = [];
    const cold: number[] = [];
    const warm: number[] = [];
    const dash: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      baseline.push(await measure(false, healthReady, { url: '/healthz' }));
      cold.push(await measure(false, loginReady, { countJs: i === 0 }));
      warm.push(await measure(true, loginReady));
      dash.push(await measure(false, dashReady, { signedIn: true }));
    }
    const kb = (n: number) => `${Math.round(n / 1024)} kB`;
    return [
      summarise('baseline: Chromium loads /healthz (no app)', baseline),
      summarise(
        `sign-in form interactive, cold cache (first-screen JS ${kb(jsRaw)}, ${kb(jsWire)} on the wire)`,
        cold,
      ),
      summarise('sign-in form interactive, warm cache (immutable hashed assets)', warm),
      summarise('dashboard with 5 projects rendered, cold cache, signed in', dash),
    ];
  } finally {
    await browser?.close();
    await server.stop();
  }
}
