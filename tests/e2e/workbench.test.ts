// The workbench as a person handles it, in real Chromium at 1280×720: pane borders dragged and
// remembered, open tabs back after a reload, terminal tabs that keep the keyboard in the
// terminal, the assistant's Stop (a slow fake Anthropic turn cancelled on the server), the
// conflict banner naming who saved first, Escape closing dialogs, and the read-only phone layout.
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { ConsoleWatch, launchChromium, patientExpect, shot, showView } from './browser.ts';
import { startFakeAnthropic, type FakeAnthropic } from './fake-anthropic.ts';
import { openPage, registerThroughApi, signInThroughUi, type Person } from './people.ts';
import { startServer, type RunningServer } from './server.ts';

const expect = patientExpect(15_000, 100);

let server: RunningServer;
let fake: FakeAnthropic;
let browser: Browser;
let olivia: Person;
let ctx: BrowserContext;
let page: Page; // Olivia's
let projectId: string;
const browserLog = new ConsoleWatch();

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

beforeAll(async () => {
  fake = await startFakeAnthropic([
    // Text, a tool, more text: shown in that order within the message.
    { text: 'Let me look at the files first.', tools: [{ name: 'list_files', input: {} }] },
    // Then a very slow answer, for Stop to cut short.
    { text: 'Now thinking about it, slowly and at length…', stallMs: 120_000 },
  ]);
  server = await startServer({
    env: { ANTHROPIC_API_KEY: 'sk-ant-fake-e2e', ANTHROPIC_BASE_URL: fake.url },
  });
  olivia = await registerThroughApi(server, 'Olivia Owner', 'olivia@example.com');
  const created = await olivia.api('POST', '/api/projects', {
    name: 'panes',
    templateId: 'node-http',
  });
  projectId = created.project.id;
  browser = await launchChromium();
  ({ context: ctx, page } = await openPage(browser, browserLog, 'owner', {
    viewport: { width: 1280, height: 720 },
    colorScheme: 'dark',
  }));
  await signInThroughUi(server, page, 'olivia@example.com');
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
    const { messages } = await olivia.api('GET', `/api/projects/${projectId}/chat`);
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
    const bob = await registerThroughApi(server, 'Bob Builder', 'bob@example.com');
    await olivia.api('POST', `/api/projects/${projectId}/members`, {
      email: 'bob@example.com',
      role: 'editor',
    });
    await olivia.api('PUT', `/api/projects/${projectId}/files/notes.txt`, { content: 'base\n' });
    // A page without live co-editing (its socket never answers): files load and save over
    // HTTP, where saves can conflict.
    const p = await ctx.newPage();
    browserLog.watch(p, 'owner (http)');
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
    await bob.api('PUT', `/api/projects/${projectId}/files/notes.txt`, { content: 'base\nbob\n' });
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
      browserLog.watch(p, 'phone');
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
    expect(browserLog.errors).toEqual([]);
    expect(browserLog.failedRequests, browserLog.badResponses.join('\n')).toEqual([
      'owner (http): Failed to load resource: the server responded with a status of 409 (Conflict)',
    ]);
  });
});
