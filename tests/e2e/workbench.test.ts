// The workbench as a person handles it, in real Chromium at 1280×720: pane borders dragged and
// remembered, open tabs back after a reload, terminal tabs that keep the keyboard in the
// terminal, the assistant's Stop (a slow fake Anthropic turn cancelled on the server), the
// conflict banner naming who saved first, Escape closing dialogs, and the read-only phone layout.
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect as baseExpect, it } from 'vitest';
import { startFakeAnthropic, type FakeAnthropic } from './fake-anthropic.ts';
import { repoRoot, startServer, type RunningServer } from './server.ts';

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

let server: RunningServer;
let fake: FakeAnthropic;
let browser: Browser;
let ctx: BrowserContext;
let page: Page;
let token: string;
let projectId: string;
const consoleErrors: string[] = [];
const failedRequests: string[] = [];

function watch(p: Page, who: string): void {
  p.on('console', (m) => {
    if (m.type() !== 'error') return;
    const text = m.text();
    (text.startsWith('Failed to load resource') ? failedRequests : consoleErrors).push(
      `${who}: ${text}`,
    );
  });
  p.on('pageerror', (err) => consoleErrors.push(`${who}: uncaught ${err.message}`));
}

async function api(method: string, url: string, body?: unknown, as = token): Promise<any> {
  const res = await fetch(`http://127.0.0.1:${server.port}${url}`, {
    method,
    headers: { authorization: `Bearer ${as}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${url}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : undefined;
}

/** A new account through the API; its access token. */
async function account(email: string, name: string): Promise<string> {
  const post = (url: string, body: unknown) =>
    fetch(`http://127.0.0.1:${server.port}${url}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
  expect((await post('/api/auth/register', { email, password, name })).status).toBe(201);
  const login = await post('/api/auth/login', { email, password });
  return ((await login.json()) as { token: string }).token;
}

async function box(p: Page, selector: string) {
  const b = await p.locator(selector).boundingBox();
  if (!b) throw new Error(`${selector} is not shown`);
  return b;
}

/** Drags the border named `label` by dx/dy pixels with the mouse. */
async function drag(p: Page, label: string, dx: number, dy = 0): Promise<void> {
  const b = await p.getByRole('separator', { name: label }).boundingBox();
  if (!b) throw new Error(`no border ${label}`);
  const x = b.x + b.width / 2;
  const y = b.y + b.height / 2;
  await p.mouse.move(x, y);
  await p.mouse.down();
  await p.mouse.move(x + dx / 2, y + dy / 2, { steps: 4 });
  await p.mouse.move(x + dx, y + dy, { steps: 4 });
  await p.mouse.up();
}

async function showView(p: Page, name: string): Promise<void> {
  const button = p.getByRole('button', { name, exact: true });
  if ((await button.getAttribute('aria-pressed')) !== 'true') await button.click();
}

async function shot(p: Page, name: string): Promise<void> {
  await p.waitForTimeout(300);
  await p.screenshot({ path: path.join(shots, `${name}.png`) });
}

beforeAll(async () => {
  if (!existsSync(chromiumPath)) throw new Error(`Chromium not found at ${chromiumPath}`);
  mkdirSync(shots, { recursive: true });
  fake = await startFakeAnthropic([
    // Text, a tool, more text: shown in that order within the message.
    { text: 'Let me look at the files first.', tools: [{ name: 'list_files', input: {} }] },
    // Then a very slow answer, for Stop to cut short.
    { text: 'Now thinking about it, slowly and at length…', stallMs: 120_000 },
  ]);
  server = await startServer({
    env: { ANTHROPIC_API_KEY: 'sk-ant-fake-e2e', ANTHROPIC_BASE_URL: fake.url },
  });
  token = await account('olivia@example.com', 'Olivia Owner');
  const created = await api('POST', '/api/projects', { name: 'panes', templateId: 'node-http' });
  projectId = created.project.id;
  browser = await chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-quic'],
  });
  ctx = await browser.newContext({ viewport: { width: 1280, height: 720 }, colorScheme: 'dark' });
  page = await ctx.newPage();
  watch(page, 'owner');
  await page.goto(server.url + '/');
  await page.getByLabel('Email').fill('olivia@example.com');
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Projects' }).waitFor();
  await page.goto(`${server.url}/projects/${projectId}`);
  await page.locator('.tree').getByText('index.html').waitFor();
}, 300_000);

afterAll(async () => {
  await browser?.close();
  await server?.stop();
  await fake?.close();
});

describe('the workbench at 1280×720', () => {
  it('resizes the side bar and the preview by drag, remembers them, resets on double-click', async () => {
    const side0 = (await box(page, 'aside.sidebar')).width;
    const preview0 = (await box(page, 'aside.right')).width;
    expect(side0).toBe(260);
    await drag(page, 'Resize the side bar', 120);
    await drag(page, 'Resize the preview', -100);
    await expect.poll(async () => (await box(page, 'aside.sidebar')).width).toBe(side0 + 120);
    await expect.poll(async () => (await box(page, 'aside.right')).width).toBe(preview0 + 100);
    // The editor still has room at this size.
    expect((await box(page, '.editor-area')).width).toBeGreaterThan(300);

    // Two open tabs; after a reload the sizes and the tabs are as they were.
    await page.locator('.tree').getByText('index.html').click();
    await page.locator('.tree').getByText('server.js').click();
    await page.locator('.tab.active[data-path="server.js"]').waitFor();
    await page.reload();
    await page.locator('.tab[data-path="index.html"]').waitFor();
    await page.locator('.tab.active[data-path="server.js"]').waitFor();
    expect((await box(page, 'aside.sidebar')).width).toBe(side0 + 120);
    expect((await box(page, 'aside.right')).width).toBe(preview0 + 100);
    // One row of tabs, scrolling rather than wrapping.
    expect(await page.locator('.tabs').evaluate((e) => getComputedStyle(e).flexWrap)).toBe(
      'nowrap',
    );
    await shot(page, 'workbench-resized');

    await page.getByRole('separator', { name: 'Resize the side bar' }).dblclick();
    await expect.poll(async () => (await box(page, 'aside.sidebar')).width).toBe(260);
  });

  it('resizes the terminal panel; Space typed after "+" opens no extra terminal', async () => {
    await page.getByRole('button', { name: 'Terminal', exact: true }).click();
    const panel0 = (await box(page, '.bottom-panel')).height;
    await drag(page, 'Resize the panel', 0, -80);
    await expect.poll(async () => (await box(page, '.bottom-panel')).height).toBe(panel0 + 80);

    const tabs = page.getByRole('tablist', { name: 'Terminals' }).getByRole('tab');
    await expect.poll(() => tabs.count()).toBe(1);
    await page.locator('[data-testid=terminal]').first().click();
    await page.getByRole('button', { name: 'New terminal' }).click();
    await expect.poll(() => tabs.count()).toBe(2);
    await page.keyboard.press('Space');
    await page.keyboard.press('Space');
    await page.waitForTimeout(500);
    expect(await tabs.count()).toBe(2);
    // The "+" never holds the focus.
    expect(
      await page.evaluate(() => document.activeElement?.getAttribute('aria-label') ?? ''),
    ).not.toBe('New terminal');
    await page.getByRole('button', { name: 'Close panel' }).click();
  });

  it('shows the assistant’s text and tools in order, and Stop cancels the run on the server', async () => {
    await showView(page, 'Assistant');
    await page.getByLabel('Message to the assistant').fill('Look around, then think');
    await page.getByRole('button', { name: 'Send' }).click();
    const answer = page.locator('[data-testid=chat-assistant]').last();
    await expect.poll(() => answer.textContent(), { timeout: 30_000 }).toContain('Now thinking');
    // As it happened: text, the tool, text.
    expect(
      await answer
        .locator('.chat-text, .chat-tool')
        .evaluateAll((els) => els.map((e) => e.className)),
    ).toEqual(['chat-text', 'chat-tool', 'chat-text']);
    await shot(page, 'assistant-running');

    const started = Date.now();
    await page.getByRole('button', { name: 'Stop' }).click();
    await expect
      .poll(() => answer.getByTestId('chat-stopped').textContent())
      .toContain('Stopped on request');
    console.log(`Stop → the chat says stopped after ${Date.now() - started} ms`);
    await page.getByRole('button', { name: 'Send' }).waitFor();
    await shot(page, 'assistant-stopped');
    // On the server the turn is over and stored as stopped.
    const { messages } = await api('GET', `/api/projects/${projectId}/chat`);
    expect(messages.at(-1).error).toMatch(/^Stopped on request/);
    // After a reload the history says it quietly too (no error), and in the same order: text,
    // the tool, text (where the tool ran is stored with the answer).
    expect(messages.at(-1).tools).toEqual([
      expect.objectContaining({ name: 'list_files', at: 'Let me look at the files first.'.length }),
    ]);
    await page.reload();
    await showView(page, 'Assistant');
    const stored = page.locator('[data-testid=chat-assistant]').last();
    await expect.poll(() => stored.getByTestId('chat-stopped').textContent()).toContain('Stopped');
    expect(await stored.getByRole('alert').count()).toBe(0);
    const shown = await stored
      .locator('.chat-text, .chat-tool')
      .evaluateAll((els) => els.map((e) => [e.className, e.textContent?.trim() ?? '']));
    expect(shown.map(([kind]) => kind)).toEqual(['chat-text', 'chat-tool', 'chat-text']);
    expect(shown[0]![1]).toBe('Let me look at the files first.');
    expect(shown[1]![1]).toContain('list_files');
    expect(shown[2]![1]).toMatch(/^Now thinking/);
  });

  it('names who saved first in the conflict banner', async () => {
    const bob = await account('bob@example.com', 'Bob Builder');
    await api('POST', `/api/projects/${projectId}/members`, {
      email: 'bob@example.com',
      role: 'editor',
    });
    await api('PUT', `/api/projects/${projectId}/files/notes.txt`, { content: 'base\n' });
    // A page without live co-editing (its socket never answers): files load and save over
    // HTTP, where saves can conflict.
    const p = await ctx.newPage();
    watch(p, 'owner (http)');
    await p.routeWebSocket(/\/api\/collab/, () => undefined);
    await p.goto(`${server.url}/projects/${projectId}`);
    await showView(p, 'Explorer');
    await p.locator('.tree').getByText('notes.txt').click();
    await p.locator('.tab.active[data-path="notes.txt"]').waitFor();
    // Loaded over HTTP once the shared channel gave no answer (4 s).
    await expect
      .poll(() => p.locator('.breadcrumbs').textContent(), { timeout: 20_000 })
      .toMatch(/notes\.txt · v\d/);
    await p.locator('.monaco-editor .view-lines').click();
    await p.keyboard.press('Control+End');
    await p.keyboard.insertText('mine\n');
    await p.locator('.tab.active .dirty-dot').waitFor();
    await api('PUT', `/api/projects/${projectId}/files/notes.txt`, { content: 'base\nbob\n' }, bob);
    await p.getByText('Bob Builder changed this file').waitFor();
    await p.keyboard.press('Control+S');
    const conflict = p.getByTestId('conflict');
    await conflict.waitFor();
    expect(await p.getByTestId('conflict-author').textContent()).toBe('Bob Builder');
    await shot(p, 'conflict-named');
    await conflict.getByRole('button', { name: 'Take theirs' }).click();
    await conflict.waitFor({ state: 'detached' });

    // Escape closes dialogs: the unsaved-changes question, the command palette.
    await p.locator('.monaco-editor .view-lines').click();
    await p.keyboard.insertText('x');
    await p.locator('.tab.active .dirty-dot').waitFor();
    await p.getByRole('button', { name: 'Close notes.txt' }).click();
    await p.getByRole('dialog').waitFor();
    await p.keyboard.press('Escape');
    await p.getByRole('dialog').waitFor({ state: 'detached' });
    await p.keyboard.press('Control+Shift+P');
    await p.getByRole('combobox', { name: 'Type a command' }).waitFor();
    await p.keyboard.press('Escape');
    await p.getByRole('combobox', { name: 'Type a command' }).waitFor({ state: 'detached' });
    await p.close();
  });

  it('at phone width shows a read-only file viewer and the preview, not the desktop', async () => {
    const phone = await browser.newContext({
      viewport: { width: 390, height: 844 },
      storageState: await ctx.storageState(),
      isMobile: true,
      hasTouch: true,
    });
    try {
      const p = await phone.newPage();
      watch(p, 'phone');
      await p.goto(`${server.url}/projects/${projectId}`);
      await p.getByTestId('phone-workbench').waitFor();
      expect(await p.locator('.activity-bar, .monaco-editor, .titlebar').count()).toBe(0);
      await p.getByRole('tab', { name: 'Files' }).click();
      await p.getByRole('button', { name: 'index.html' }).click();
      await expect.poll(() => p.getByTestId('phone-file').textContent()).toContain('<h1');
      await shot(p, 'phone-file');
      await p.getByRole('tab', { name: 'Preview' }).click();
      await p.locator('.preview').waitFor();
      await shot(p, 'phone-preview');
    } finally {
      await phone.close();
    }
  });

  it('logged no console errors, and no failed request but the conflicting save', () => {
    expect(consoleErrors).toEqual([]);
    expect(failedRequests).toEqual([
      'owner (http): Failed to load resource: the server responded with a status of 409 (Conflict)',
    ]);
  });
});
