// Session chat and who-is-here in real Chromium against the real server: the owner invites a
// second person as editor, both open the project and see each other's avatar, a message sent by
// one arrives live at the other (an unread badge while the panel is closed), a file the second
// person has open (a stock ShareDB client on WS /api/collab) is marked in the owner's explorer,
// and after a reload the history is there, a page at a time ("Earlier messages"), live messages
// after it. Writes docs/screenshots/session-chat.png.
import { existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type as textUnicode } from 'ot-text-unicode';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import ShareDBClient from 'sharedb/lib/client/index.js';
import { afterAll, beforeAll, beforeEach, describe, expect as baseExpect, it } from 'vitest';
import { WebSocket } from 'ws';
import { repoRoot, startServer, type RunningServer } from './server.ts';

// Sockets and renders take a moment on a loaded machine: poll for up to 15 s.
const basePoll = baseExpect.poll.bind(baseExpect);
const expect = Object.assign(
  (value: unknown, message?: string) => baseExpect(value, message),
  baseExpect,
  {
    poll: ((fn: () => unknown, opts?: { timeout?: number; interval?: number }) =>
      basePoll(fn, { timeout: 15_000, interval: 100, ...opts })) as typeof baseExpect.poll,
  },
) as typeof baseExpect;

ShareDBClient.types.register(textUnicode as never);

const chromiumPath = process.env.VF_CHROMIUM ?? '/usr/bin/chromium';
const shots = path.join(repoRoot, 'docs', 'screenshots');
const password = 'correct horse battery';

let server: RunningServer;
let browser: Browser;
const contexts: BrowserContext[] = [];
let alice: Page;
let bob: Page;
let aliceId: string;
let bobId: string;
let projectId: string;
const pageErrors: string[] = [];

async function call(token: string | null, method: string, url: string, body?: unknown) {
  const res = await fetch(`http://127.0.0.1:${server.port}${url}`, {
    method,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      'content-type': 'application/json',
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${url}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : undefined;
}

/** Registers through the sign-up form; returns the page (signed in) and the user's id. */
async function signUp(name: string, email: string): Promise<{ page: Page; userId: string }> {
  const context = await browser.newContext({
    viewport: { width: 1280, height: 760 },
    colorScheme: 'dark',
  });
  contexts.push(context);
  const page = await context.newPage();
  page.on('pageerror', (err) => pageErrors.push(`${name}: ${err.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource'))
      pageErrors.push(`${name}: ${m.text()}`);
  });
  await page.goto(server.url + '/');
  await page.getByRole('link', { name: 'Create an account' }).click();
  await page.getByLabel('Name').fill(name);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.getByRole('heading', { name: 'Projects' }).waitFor();
  const session = await page.evaluate(
    () => JSON.parse(localStorage.getItem('vf.session')!) as { user: { id: string } },
  );
  return { page, userId: session.user.id };
}

async function tokenOf(p: Page): Promise<string> {
  return p.evaluate(
    () => (JSON.parse(localStorage.getItem('vf.session')!) as { token: string }).token,
  );
}

async function openSession(p: Page): Promise<void> {
  const button = p.getByTestId('session-chat-button');
  if ((await button.getAttribute('aria-pressed')) !== 'true') await button.click();
  await p.getByRole('textbox', { name: 'Message to the session' }).waitFor();
}

/** The texts of the session chat's messages, in order. */
function messages(p: Page): Promise<string[]> {
  return p.locator('[data-testid=session-message] .session-text').allTextContents();
}

async function shot(p: Page, name: string): Promise<void> {
  await p.bringToFront();
  await p.evaluate(
    () => new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve))),
  );
  await p.waitForTimeout(300);
  await p.screenshot({ path: path.join(shots, `${name}.png`) });
}

beforeAll(async () => {
  if (!existsSync(chromiumPath)) {
    throw new Error(`Chromium not found at ${chromiumPath}: apt-get install chromium (CI does)`);
  }
  mkdirSync(shots, { recursive: true });
  server = await startServer({ publicHost: 'localhost' });
  browser = await chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run'],
  });
  ({ page: alice, userId: aliceId } = await signUp('Alice Author', 'alice@example.com'));
  ({ page: bob, userId: bobId } = await signUp('Bob Builder', 'bob@example.com'));
  const aliceToken = await tokenOf(alice);
  const created = await call(aliceToken, 'POST', '/api/projects', {
    name: 'pair-session',
    description: 'Two people, one project',
  });
  projectId = created.project.id;
  await call(aliceToken, 'PUT', `/api/projects/${projectId}/files/index.html`, {
    content: '<h1>Hello</h1>\n',
  });
  await call(aliceToken, 'PUT', `/api/projects/${projectId}/files/app.js`, {
    content: 'console.log("hi");\n',
  });
  await call(aliceToken, 'POST', `/api/projects/${projectId}/members`, {
    email: 'bob@example.com',
    role: 'editor',
  });
}, 300_000);

afterAll(async () => {
  for (const c of contexts) await c.close().catch(() => undefined);
  await browser?.close();
  await server?.stop();
});

beforeEach(({ task, onTestFailed }) => {
  onTestFailed(async () => {
    const name = task.name.replace(/[^a-z0-9]+/gi, '-').slice(0, 50);
    await alice?.screenshot({ path: path.join(tmpdir(), `vf-e2e-chat-${name}-alice.png`) });
    await bob?.screenshot({ path: path.join(tmpdir(), `vf-e2e-chat-${name}-bob.png`) });
  });
});

describe('session chat and presence in Chromium', () => {
  it('shows each person the other’s avatar in the title bar', async () => {
    await alice.goto(`${server.url}/projects/${projectId}`);
    await bob.goto(`${server.url}/projects/${projectId}`);
    const bobOnAlice = alice.locator(`[data-testid=presence] [data-user-id="${bobId}"]`);
    const aliceOnBob = bob.locator(`[data-testid=presence] [data-user-id="${aliceId}"]`);
    await expect.poll(() => bobOnAlice.isVisible()).toBe(true);
    await expect.poll(() => aliceOnBob.isVisible()).toBe(true);
    // Initials, the name on hover, the same colour in both browsers.
    expect(await bobOnAlice.textContent()).toBe('BB');
    expect(await bobOnAlice.getAttribute('title')).toBe('Bob Builder');
    expect(await aliceOnBob.textContent()).toBe('AA');
    const colour = (p: Page, id: string) =>
      p.locator(`[data-testid=presence] [data-user-id="${id}"]`).evaluate((e) => {
        return getComputedStyle(e).backgroundColor;
      });
    expect(await colour(bob, bobId)).toBe(await colour(alice, bobId));
    expect(await colour(alice, aliceId)).toBe(await colour(bob, aliceId));
    // (Two people can share a colour: it comes from the user id, 8 hues, not from who is here.)
  });

  it('delivers a message live, with an unread badge while the panel is closed', async () => {
    await openSession(alice);
    const box = alice.getByRole('textbox', { name: 'Message to the session' });
    await box.fill('Hi Bob, can you look at the header?');
    await box.press('Enter');
    await expect.poll(() => messages(alice)).toEqual(['Hi Bob, can you look at the header?']);
    await expect.poll(() => box.inputValue()).toBe('');

    // Bob has the explorer open: the badge counts what he has not seen.
    await expect.poll(() => bob.getByTestId('session-unread').textContent()).toBe('1');
    await openSession(bob);
    await expect.poll(() => messages(bob)).toEqual(['Hi Bob, can you look at the header?']);
    await expect
      .poll(() => bob.locator('.session-author').first().textContent())
      .toBe('Alice Author');
    expect(await bob.getByTestId('session-unread').count()).toBe(0);

    // Shift+Enter is a new line; Enter sends.
    const bobBox = bob.getByRole('textbox', { name: 'Message to the session' });
    await bobBox.click();
    await bob.keyboard.type('On it.');
    await bob.keyboard.press('Shift+Enter');
    await bob.keyboard.type('Give me five minutes.');
    expect(await bobBox.inputValue()).toBe('On it.\nGive me five minutes.');
    await bob.keyboard.press('Enter');
    await expect
      .poll(() => messages(alice))
      .toEqual(['Hi Bob, can you look at the header?', 'On it.\nGive me five minutes.']);
    await expect
      .poll(() => alice.locator('.session-author').allTextContents())
      .toEqual(['Alice Author (you)', 'Bob Builder']);
    await shot(alice, 'session-chat');
  });

  it('marks in the explorer the files others have open', async () => {
    // Bob's editor opens index.html through the collaboration socket (the stock ShareDB client).
    const ws = new WebSocket(
      `ws://127.0.0.1:${server.port}/api/collab?token=${encodeURIComponent(await tokenOf(bob))}`,
    );
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    const connection = new ShareDBClient.Connection(ws as never);
    try {
      const doc = connection.get(projectId, 'index.html');
      await new Promise<void>((resolve, reject) =>
        doc.subscribe((err) => (err ? reject(err) : resolve())),
      );
      expect(doc.data).toBe('<h1>Hello</h1>\n');

      await alice.getByRole('button', { name: 'Explorer', exact: true }).click();
      const row = alice.locator('.tree-row', { hasText: 'index.html' });
      await expect.poll(() => row.locator('.file-collaborators').textContent()).toBe('BB');
      expect(await row.locator('.file-collaborators').getAttribute('title')).toBe(
        'Open by Bob Builder',
      );
      expect(
        await alice
          .locator('.tree-row', { hasText: 'app.js' })
          .locator('.file-collaborators')
          .count(),
      ).toBe(0);
      await shot(alice, 'session-presence');
    } finally {
      connection.close();
      ws.close();
    }
    // Closed: the mark goes away.
    await expect
      .poll(() =>
        alice
          .locator('.tree-row', { hasText: 'index.html' })
          .locator('.file-collaborators')
          .count(),
      )
      .toBe(0);
  });

  it('keeps the history across a reload, and the other person’s avatar goes when they leave', async () => {
    await bob.reload();
    await openSession(bob);
    await expect
      .poll(() => messages(bob))
      .toEqual(['Hi Bob, can you look at the header?', 'On it.\nGive me five minutes.']);
    await expect
      .poll(() => bob.locator(`[data-testid=presence] [data-user-id="${aliceId}"]`).isVisible())
      .toBe(true);

    await bob.goto(`${server.url}/`);
    await expect
      .poll(() => alice.locator(`[data-testid=presence] [data-user-id="${bobId}"]`).count())
      .toBe(0);
    expect(pageErrors).toEqual([]);
  });

  it('pages back through earlier messages, and live ones join the end', async () => {
    const tokens = [await tokenOf(alice), await tokenOf(bob)];
    /** Posts as Alice (even i) or Bob; waits out the chat's rate limit (429 Retry-After). */
    async function post(i: number, text: string): Promise<void> {
      for (let attempt = 0; attempt < 4; attempt++) {
        const res = await fetch(
          `http://127.0.0.1:${server.port}/api/projects/${projectId}/messages`,
          {
            method: 'POST',
            headers: {
              authorization: `Bearer ${tokens[i % 2]}`,
              'content-type': 'application/json',
            },
            body: JSON.stringify({ text }),
          },
        );
        if (res.status === 201) return;
        expect(res.status).toBe(429);
        await new Promise((r) => setTimeout(r, 1000 * Number(res.headers.get('retry-after') ?? 5)));
      }
      throw new Error(`still rate limited posting ${text}`);
    }
    // 50 more: the newest page (50) holds only these; the first two are a page further back.
    for (let i = 1; i <= 50; i++) await post(i, `Note ${i}`);
    const notes = Array.from({ length: 50 }, (_, i) => `Note ${i + 1}`);
    const first = ['Hi Bob, can you look at the header?', 'On it.\nGive me five minutes.'];

    await alice.reload();
    await openSession(alice);
    await expect.poll(() => messages(alice)).toEqual(notes);
    await alice.getByRole('button', { name: 'Earlier messages' }).click();
    await expect.poll(() => messages(alice)).toEqual([...first, ...notes]);
    expect(await alice.getByRole('button', { name: 'Earlier messages' }).count()).toBe(0);

    // A message arriving live after paging back goes after the newest.
    await post(1, 'Live after paging');
    await expect.poll(() => messages(alice)).toEqual([...first, ...notes, 'Live after paging']);
    expect(pageErrors).toEqual([]);
  }, 120_000);
});
