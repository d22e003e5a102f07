// Session chat and who-is-here in real Chromium against the real server: the owner invites a
// second person as editor, both open the project and see each other's avatar, a message sent by
// one arrives live at the other (an unread badge while the panel is closed), a file the second
// person has open (a stock ShareDB client on WS /api/collab) is marked in the owner's explorer,
// and after a reload the history is there, a page at a time ("Earlier messages"), live messages
// after it. Writes docs/screenshots/session-chat.png.
import { type as textUnicode } from 'ot-text-unicode';
import type { Browser, Page } from 'playwright-core';
import ShareDBClient from 'sharedb/lib/client/index.js';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { WebSocket } from 'ws';
import {
  ConsoleWatch,
  launchChromium,
  patientExpect,
  screenshotOnFailure,
  shot,
} from './browser.ts';
import { signUp, type PersonInBrowser } from './people.ts';
import { startServer, type RunningServer } from './server.ts';

// Sockets and renders take a moment on a loaded machine: poll for up to 15 s.
const expect = patientExpect(15_000, 100);

ShareDBClient.types.register(textUnicode as never);

let server: RunningServer;
let browser: Browser;
let author: PersonInBrowser;
let builder: PersonInBrowser;
let alice: Page; // the author's, who owns the project
let bob: Page; // the builder's, invited as editor
let aliceId: string;
let bobId: string;
let projectId: string;
const browserLog = new ConsoleWatch();

async function openSession(p: Page): Promise<void> {
  const button = p.getByTestId('session-chat-button');
  if ((await button.getAttribute('aria-pressed')) !== 'true') await button.click();
  await p.getByRole('textbox', { name: 'Message to the session' }).waitFor();
}

/** The texts of the session chat's messages, in order. */
function messages(p: Page): Promise<string[]> {
  return p.locator('[data-testid=session-message] .session-text').allTextContents();
}

beforeAll(async () => {
  server = await startServer({ publicHost: 'localhost' });
  browser = await launchChromium();
  const options = { viewport: { width: 1280, height: 760 }, colorScheme: 'dark' as const };
  [author, builder] = await signUp(server, browser, browserLog, options, [
    { who: 'alice', name: 'Alice Author', email: 'alice@example.com' },
    { who: 'bob', name: 'Bob Builder', email: 'bob@example.com' },
  ]);
  ({ page: alice, id: aliceId } = author);
  ({ page: bob, id: bobId } = builder);
  const created = await author.api('POST', '/api/projects', {
    name: 'pair-session',
    description: 'Two people, one project',
  });
  projectId = created.project.id;
  await author.api('PUT', `/api/projects/${projectId}/files/index.html`, {
    content: '<h1>Hello</h1>\n',
  });
  await author.api('PUT', `/api/projects/${projectId}/files/app.js`, {
    content: 'console.log("hi");\n',
  });
  await author.api('POST', `/api/projects/${projectId}/members`, {
    email: 'bob@example.com',
    role: 'editor',
  });
}, 300_000);

afterAll(async () => {
  for (const p of [author, builder]) await p?.context.close().catch(() => undefined);
  await browser?.close();
  await server?.stop();
});

screenshotOnFailure('chat', () => ({ alice, bob }));

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
      `ws://127.0.0.1:${server.port}/api/collab?token=${encodeURIComponent(await builder.token())}`,
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
    expect(browserLog.errors).toEqual([]);
  });

  it('pages back through earlier messages, and live ones join the end', async () => {
    const tokens = [await author.token(), await builder.token()];
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
    expect(browserLog.errors).toEqual([]);
  }, 120_000);
});
