// Live co-editing in real Chromium against the real server (WS /api/collab): two people in two
// browser contexts type into one file at the same time and end with the same text, see each
// other's cursor with its name, undo only their own edits; a change through the API appears in
// the open editors without a reload; a reload keeps everything; a viewer gets a read-only
// editor that says so. Writes docs/screenshots/collab-*.png.
import { existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, beforeEach, describe, expect as baseExpect, it } from 'vitest';
import { repoRoot, startServer, type RunningServer } from './server.ts';

// Poll for up to 15 s unless told otherwise (a loaded 2-core machine).
const basePoll = baseExpect.poll.bind(baseExpect);
const expect = Object.assign(
  (value: unknown, message?: string) => baseExpect(value, message),
  baseExpect,
  {
    poll: ((fn: () => unknown, opts?: { timeout?: number; interval?: number }) =>
      basePoll(fn, { timeout: 15_000, interval: 100, ...opts })) as typeof baseExpect.poll,
  },
) as typeof baseExpect;

const chromiumPath = process.env.VF_CHROMIUM ?? '/usr/bin/chromium';
const shots = path.join(repoRoot, 'docs', 'screenshots');
const password = 'correct horse battery';
const FILE = 'shared.txt';

let server: RunningServer;
let browser: Browser;
let ownerCtx: BrowserContext;
let memberCtx: BrowserContext;
let alice: Page; // the owner
let bob: Page; // invited as editor
let projectId: string;
const consoleErrors: string[] = [];

function watch(p: Page, who: string): void {
  p.on('console', (m) => {
    if (m.type() !== 'error') return;
    const text = m.text();
    if (!text.startsWith('Failed to load resource')) consoleErrors.push(`${who}: ${text}`);
  });
  p.on('pageerror', (err) => consoleErrors.push(`${who}: uncaught ${err.message}`));
}

async function shot(p: Page, name: string): Promise<void> {
  await p.bringToFront();
  await p.evaluate(
    () => new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve))),
  );
  await p.waitForTimeout(300);
  await p.screenshot({ path: path.join(shots, `${name}.png`) });
}

async function register(p: Page, email: string, name: string): Promise<void> {
  await p.goto(server.url + '/');
  await p.getByRole('link', { name: 'Create an account' }).click();
  await p.getByLabel('Name').fill(name);
  await p.getByLabel('Email').fill(email);
  await p.getByLabel('Password').fill(password);
  await p.getByRole('button', { name: 'Create account' }).click();
  await p.getByRole('heading', { name: 'Projects' }).waitFor();
}

async function api(p: Page, method: string, url: string, body?: unknown): Promise<any> {
  const token = await p.evaluate(
    () => (JSON.parse(localStorage.getItem('vf.session')!) as { token: string }).token,
  );
  const res = await fetch(`http://127.0.0.1:${server.port}${url}`, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${url}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : undefined;
}

/** The text the open editor shows (its lines in screen order: Monaco reuses line nodes). */
async function editorText(p: Page): Promise<string> {
  return p.evaluate(() =>
    Array.from(document.querySelectorAll<HTMLElement>('.monaco-editor .view-line'))
      .sort((a, b) => parseFloat(a.style.top) - parseFloat(b.style.top))
      .map((l) => l.textContent ?? '')
      .join('\n')
      .replace(/\u00a0/g, ' '),
  );
}

/** Opens the shared file in a page's IDE and waits for its text. */
async function openShared(p: Page): Promise<void> {
  await p.goto(`${server.url}/projects/${projectId}`);
  await p.locator('.tree').getByText(FILE, { exact: true }).click();
  await p.locator('.monaco-editor .view-lines').waitFor();
  await expect.poll(() => editorText(p)).toContain('second line');
}

/** Puts the caret at the end of a line (1-based) by clicking it and pressing End. */
async function caretAtEndOf(p: Page, line: number): Promise<void> {
  await p
    .locator('.monaco-editor .view-line')
    .nth(line - 1)
    .click();
  await p.keyboard.press('End');
}

beforeAll(async () => {
  if (!existsSync(chromiumPath)) {
    throw new Error(`Chromium not found at ${chromiumPath}: apt-get install chromium`);
  }
  mkdirSync(shots, { recursive: true });
  server = await startServer({ publicHost: 'localhost' });
  browser = await chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run'],
  });
  ownerCtx = await browser.newContext({
    viewport: { width: 1280, height: 760 },
    colorScheme: 'dark',
  });
  memberCtx = await browser.newContext({
    viewport: { width: 1280, height: 760 },
    colorScheme: 'dark',
  });
  alice = await ownerCtx.newPage();
  bob = await memberCtx.newPage();
  watch(alice, 'owner');
  watch(bob, 'member');
  await register(alice, 'alice@example.com', 'Alice Owner');
  await register(bob, 'bob@example.com', 'Bob Editor');
  const { project } = await api(alice, 'POST', '/api/projects', {
    name: `collab-${Date.now()}`,
    templateId: 'node-http',
  });
  projectId = project.id;
  await api(alice, 'PUT', `/api/projects/${projectId}/files/${FILE}`, {
    content: 'first line\nsecond line\n',
  });
  await api(alice, 'POST', `/api/projects/${projectId}/members`, {
    email: 'bob@example.com',
    role: 'editor',
  });
}, 300_000);

afterAll(async () => {
  await browser?.close();
  await server?.stop();
});

beforeEach(({ task, onTestFailed }) => {
  onTestFailed(async () => {
    const name = task.name.replace(/[^a-z0-9]+/gi, '-').slice(0, 50);
    for (const [who, p] of [
      ['owner', alice],
      ['member', bob],
    ] as const) {
      await p
        ?.screenshot({ path: path.join(tmpdir(), `vf-e2e-collab-${who}-${name}.png`) })
        .catch(() => undefined);
    }
  });
});

describe('live co-editing in Chromium', () => {
  it('two people typing into one file at the same time end with the same text', async () => {
    await openShared(alice);
    await openShared(bob);
    await caretAtEndOf(alice, 1);
    await caretAtEndOf(bob, 2);
    // Both type at once, character by character (each keystroke is an op).
    await Promise.all([
      alice.keyboard.type(' — Alice was here 😀', { delay: 40 }),
      bob.keyboard.type(' and Bob too', { delay: 35 }),
    ]);
    const expected = 'first line — Alice was here 😀\nsecond line and Bob too\n';
    await expect.poll(() => editorText(alice)).toBe(expected);
    await expect.poll(() => editorText(bob)).toBe(expected);
    // The server writes the document back to the file after a pause in typing.
    await expect
      .poll(
        async () => (await api(alice, 'GET', `/api/projects/${projectId}/files/${FILE}`)).content,
        {
          timeout: 20_000,
        },
      )
      .toBe(expected);
  });

  it("each sees the other's cursor with their name", async () => {
    await caretAtEndOf(alice, 1);
    await caretAtEndOf(bob, 2);
    await alice.keyboard.press('Home'); // move once more: a fresh presence
    const bobOnAlice = alice.locator('.collab-label', { hasText: 'Bob Editor' });
    const aliceOnBob = bob.locator('.collab-label', { hasText: 'Alice Owner' });
    await bobOnAlice.waitFor({ timeout: 15_000 });
    await aliceOnBob.waitFor({ timeout: 15_000 });
    await expect.poll(() => alice.locator('.collab-caret').count()).toBeGreaterThan(0);
    // Bob selects a word: Alice sees it highlighted in his colour.
    await bob.keyboard.press('Shift+Control+ArrowLeft');
    await expect.poll(() => alice.locator('.collab-selection').count()).toBeGreaterThan(0);
    await shot(alice, 'collab-cursors');
    await shot(bob, 'collab-member');
  });

  it('undo takes back only my own edit, not what the other typed', async () => {
    await caretAtEndOf(alice, 1);
    await alice.keyboard.type(' [mine]');
    await expect.poll(() => editorText(bob)).toContain('[mine]');
    await caretAtEndOf(bob, 2);
    await bob.keyboard.type(' [bob]');
    await expect.poll(() => editorText(alice)).toContain('[bob]');
    await alice.locator('.monaco-editor textarea').focus();
    await alice.keyboard.press('Control+Z');
    await expect.poll(() => editorText(alice)).not.toContain('[mine]');
    await expect.poll(() => editorText(bob)).not.toContain('[mine]');
    expect(await editorText(alice)).toContain('[bob]');
    await alice.keyboard.press('Control+Shift+Z');
    await expect.poll(() => editorText(bob)).toContain('[mine]');
  });

  it('a change made through the API appears in the open editors without a reload', async () => {
    const current = await editorText(alice);
    await expect
      .poll(
        async () => (await api(alice, 'GET', `/api/projects/${projectId}/files/${FILE}`)).content,
        {
          timeout: 20_000,
        },
      )
      .toBe(current);
    await api(alice, 'PUT', `/api/projects/${projectId}/files/${FILE}`, {
      content: 'from the API\n' + current,
    });
    await expect
      .poll(() => editorText(alice), { timeout: 20_000 })
      .toBe('from the API\n' + current);
    await expect.poll(() => editorText(bob), { timeout: 20_000 }).toBe('from the API\n' + current);
  });

  it('a reload keeps everything', async () => {
    const before = await editorText(alice);
    await bob.reload();
    await bob.locator('.tree').getByText(FILE, { exact: true }).click();
    await expect.poll(() => editorText(bob)).toBe(before);
    await alice.reload();
    await alice.locator('.tree').getByText(FILE, { exact: true }).click();
    await expect.poll(() => editorText(alice)).toBe(before);
  });

  it('a viewer sees the text live in an editor that is read-only and says so', async () => {
    const bobId = await bob.evaluate(
      () => (JSON.parse(localStorage.getItem('vf.session')!) as { user: { id: string } }).user.id,
    );
    await api(alice, 'PATCH', `/api/projects/${projectId}/members/${bobId}`, { role: 'viewer' });
    await bob.getByTestId('view-only').waitFor({ timeout: 15_000 });
    await expect
      .poll(() => bob.getByTestId('view-only').textContent())
      .toBe('View only — you are a viewer');
    const before = await editorText(bob);
    await caretAtEndOf(bob, 1);
    await bob.keyboard.type('nope');
    await bob.waitForTimeout(500);
    expect(await editorText(bob)).toBe(before);
    // The owner's typing still reaches the viewer live.
    await caretAtEndOf(alice, 1);
    await alice.keyboard.type(' (seen by a viewer)');
    await expect.poll(() => editorText(bob)).toContain('(seen by a viewer)');
    await shot(bob, 'collab-viewer');
  });

  it('logged no console errors', () => {
    expect(consoleErrors).toEqual([]);
  });
});
