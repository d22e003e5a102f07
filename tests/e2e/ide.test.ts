// The IDE in real Chromium against the real server: register → wizard (zero-dependency
// template) → files appear → edit and save → the preview shows it → the terminal echoes → the
// assistant (fake Anthropic API) creates a file, its diff shows, revert → a second member sees
// changes live. Writes screenshots of the main screens to docs/screenshots/.
import { existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, beforeEach, describe, expect as baseExpect, it } from 'vitest';

// Monaco, xterm and the dev server take a moment: poll for up to 15 s unless told otherwise.
const basePoll = baseExpect.poll.bind(baseExpect);
const expect = Object.assign(
  (value: unknown, message?: string) => baseExpect(value, message),
  baseExpect,
  {
    poll: ((fn: () => unknown, opts?: { timeout?: number; interval?: number }) =>
      basePoll(fn, { timeout: 15_000, interval: 100, ...opts })) as typeof baseExpect.poll,
  },
) as typeof baseExpect;
import { startFakeAnthropic, type FakeAnthropic } from './fake-anthropic.ts';
import { repoRoot, startServer, type RunningServer } from './server.ts';

const chromiumPath = process.env.VF_CHROMIUM ?? '/usr/bin/chromium';
const shots = path.join(repoRoot, 'docs', 'screenshots');
const password = 'correct horse battery';

let server: RunningServer;
let fake: FakeAnthropic;
let browser: Browser;
let owner: BrowserContext;
let page: Page;
let projectId: string;
const consoleErrors: string[] = [];
const networkErrors: string[] = [];

/** Console errors and uncaught exceptions of a page (failed requests are listed apart). */
function watch(p: Page, who: string): void {
  p.on('console', (m) => {
    if (m.type() !== 'error') return;
    const text = m.text();
    if (text.startsWith('Failed to load resource')) networkErrors.push(`${who}: ${text}`);
    else consoleErrors.push(`${who}: ${text}`);
  });
  p.on('pageerror', (err) => consoleErrors.push(`${who}: uncaught ${err.message}`));
}

async function shot(p: Page, name: string): Promise<void> {
  // Make sure the compositor shows the current DOM (an out-of-process preview frame can leave
  // the captured surface a few frames behind).
  await p.bringToFront();
  await p.evaluate(
    () => new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve))),
  );
  await p.waitForTimeout(300);
  await p.screenshot({ path: path.join(shots, `${name}.png`) });
}

/** Signs up through the UI and lands on the dashboard. */
async function registerThroughUi(p: Page, email: string, name: string): Promise<void> {
  await p.goto(server.url + '/');
  await p.getByRole('link', { name: 'Create an account' }).click();
  await p.getByLabel('Name').fill(name);
  await p.getByLabel('Email').fill(email);
  await p.getByLabel('Password').fill(password);
  await p.getByRole('button', { name: 'Create account' }).click();
  await p.getByRole('heading', { name: 'Projects' }).waitFor();
}

async function api(token: string, method: string, url: string, body?: unknown): Promise<any> {
  const res = await fetch(`http://127.0.0.1:${server.port}${url}`, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${url}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : undefined;
}

async function tokenOf(p: Page): Promise<string> {
  return p.evaluate(
    () => (JSON.parse(localStorage.getItem('vf.session')!) as { token: string }).token,
  );
}

/** Text currently shown by the Monaco editor of a page. */
async function editorText(p: Page): Promise<string> {
  return p.evaluate(() =>
    Array.from(document.querySelectorAll('.monaco-editor .view-line'))
      .map((l) => l.textContent ?? '')
      .join('\n')
      .replace(/\u00a0/g, ' '),
  );
}

beforeAll(async () => {
  if (!existsSync(chromiumPath)) {
    throw new Error(
      `Chromium not found at ${chromiumPath}: apt-get install chromium (CI installs it)`,
    );
  }
  mkdirSync(shots, { recursive: true });
  // apps/web/dist is built by global-setup.ts.
  fake = await startFakeAnthropic([
    {
      text: 'I will add a notes file.',
      tools: [
        {
          name: 'write_file',
          input: { path: 'NOTES.md', content: '# Notes\n\nWritten by the assistant.\n' },
        },
      ],
    },
    { text: 'Created NOTES.md with a heading.' },
  ]);
  server = await startServer({
    env: { ANTHROPIC_API_KEY: 'sk-ant-fake-e2e', ANTHROPIC_BASE_URL: fake.url },
    // The default public URL, as `npm start` gives it: the IDE on localhost frames previews on
    // <id>.preview.localhost, another site (the preview cookie is SameSite=None, partitioned).
    publicHost: 'localhost',
  });
  browser = await chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      '--disable-quic',
    ],
  });
  owner = await browser.newContext({ viewport: { width: 1440, height: 900 }, colorScheme: 'dark' });
  page = await owner.newPage();
  watch(page, 'owner');
}, 300_000);

afterAll(async () => {
  await browser?.close();
  await server?.stop();
  await fake?.close();
  if (networkErrors.length)
    console.log(`failed requests seen by the browser:\n${networkErrors.join('\n')}`);
});

/** Opens a side view unless it is already open (clicking the active one closes it, as in VS Code). */
async function showView(p: Page, name: string): Promise<void> {
  const button = p.getByRole('button', { name, exact: true });
  if ((await button.getAttribute('aria-pressed')) !== 'true') await button.click();
}

beforeEach(({ task, onTestFailed }) => {
  onTestFailed(async () => {
    const name = task.name.replace(/[^a-z0-9]+/gi, '-').slice(0, 60);
    await page
      ?.screenshot({ path: path.join(tmpdir(), `vf-e2e-failed-${name}.png`) })
      .catch(() => undefined);
  });
});

describe('the web IDE in Chromium', () => {
  it('shows the sign-in form fast and lets a new user register', async () => {
    const started = Date.now();
    await page.goto(server.url + '/');
    await page.getByRole('button', { name: 'Sign in' }).waitFor();
    const toLogin = Date.now() - started;
    console.log(`first screen: sign-in form interactive after ${toLogin} ms`);
    expect(toLogin).toBeLessThan(5000);
    await shot(page, 'login');

    await registerThroughUi(page, 'owner@example.com', 'Olivia Owner');
    await expect.poll(() => page.getByText('No projects yet.').isVisible()).toBe(true);
    await shot(page, 'dashboard-empty');
  });

  it('creates a project with the wizard and shows real set-up steps', async () => {
    await page.getByRole('button', { name: 'New project' }).click();
    await page.getByLabel('Project name').fill('hello-web');
    await page.getByLabel('Description').fill('A zero-dependency page');
    await page.getByLabel('Functionality').fill('Shows a greeting.');
    await page.getByRole('button', { name: 'Next' }).click();
    // A template decides the stack: its path skips the stack steps (the assistant's path has them).
    await page.getByText('Describe it to the AI').click();
    await expect.poll(() => page.locator('.steps li').allTextContents()).toHaveLength(6);
    await page.getByText('A template', { exact: true }).click();
    await expect.poll(() => page.locator('.steps li').allTextContents()).toHaveLength(2);
    await page.getByText('Node.js HTTP (zero dependencies)').click();
    await shot(page, 'wizard');
    await page.getByRole('button', { name: 'Create project' }).click();

    await page.getByRole('heading', { name: /Setting up/ }).waitFor();
    projectId = /\/projects\/([^/]+)\/creating/.exec(page.url())![1]!;
    const step = (label: RegExp) => page.locator('.progress li').filter({ hasText: label });
    await expect
      .poll(() => step(/Files written/).getAttribute('data-state'), { timeout: 30_000 })
      .toBe('done');
    await shot(page, 'wizard-progress');
    await expect
      .poll(() => step(/Dev server up/).getAttribute('data-state'), { timeout: 90_000 })
      .toBe('done');
    // The set-up page moves on to the IDE by itself.
    await page.locator('.tree').getByText('index.html').waitFor({ timeout: 15_000 });
    expect(page.url()).toBe(`${server.url}/projects/${projectId}`);
    for (const f of ['server.js', 'style.css', 'package.json']) {
      await page.locator('.tree').getByText(f, { exact: true }).waitFor();
    }
  });

  it('edits and saves a file with Ctrl+S, and the preview shows the change', async () => {
    await page.locator('.tree').getByText('index.html').click();
    await page.locator('.monaco-editor .view-lines').waitFor();
    await expect.poll(() => editorText(page)).toContain('Hello from Vaporform');
    await page.locator('.monaco-editor .view-lines').click();
    await page.keyboard.press('Control+End');
    await page.keyboard.press('Enter');
    await page.keyboard.insertText('Edited in the browser');
    await page.locator('.tab.active .dirty-dot').waitFor();
    await page.keyboard.press('Control+S');
    await page.locator('.tab.active .dirty-dot').waitFor({ state: 'detached' });
    const token = await tokenOf(page);
    const file = await api(token, 'GET', `/api/projects/${projectId}/files/index.html`);
    expect(file.content).toContain('Edited in the browser');

    const frame = page.frameLocator('[data-testid=preview-frame]');
    await page.getByRole('button', { name: 'Reload preview' }).click();
    await frame.getByText('Edited in the browser').waitFor({ timeout: 20_000 });
    await shot(page, 'workbench');
  });

  it('runs commands in the terminal', async () => {
    await page.getByRole('button', { name: 'Terminal', exact: true }).click();
    const term = page.locator('[data-testid=terminal]').first();
    await term.locator('.xterm-rows').waitFor();
    await expect
      .poll(() => page.locator('.terminal-view').first().getAttribute('data-status'), {
        timeout: 20_000,
      })
      .toBe('open');
    await term.click();
    await page.keyboard.type('echo vf-e2e-$((6*7))\n');
    await expect
      .poll(() => term.locator('.xterm-rows').textContent(), { timeout: 20_000 })
      .toContain('vf-e2e-42');
    await shot(page, 'terminal');
  });

  it('shows what the assistant changed as a diff, and reverts it', async () => {
    await showView(page, 'Assistant');
    await page.getByLabel('Message to the assistant').fill('Add a notes file');
    await page.getByRole('button', { name: 'Send' }).click();
    const changeset = page.locator('[data-testid=changeset]').last();
    await changeset.waitFor({ timeout: 30_000 });
    await expect.poll(() => changeset.textContent()).toContain('NOTES.md');
    await expect
      .poll(() => changeset.locator('.unified-diff').first().textContent())
      .toContain('+# Notes');
    await expect
      .poll(() => page.locator('[data-testid=chat-assistant]').last().textContent())
      .toContain('Created NOTES.md');
    await shot(page, 'assistant');

    await changeset.getByRole('button', { name: 'Revert' }).click();
    await changeset.getByRole('button', { name: 'Reverted' }).waitFor();
    const token = await tokenOf(page);
    const { files } = await api(token, 'GET', `/api/projects/${projectId}/files`);
    expect(files.map((f: { path: string }) => f.path)).not.toContain('NOTES.md');
    await showView(page, 'Explorer');
    await page.locator('.tree').getByText('NOTES.md').waitFor({ state: 'detached' });
  });

  it('a second member sees file changes live', async () => {
    const other = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    try {
      const p2 = await other.newPage();
      watch(p2, 'member');
      await registerThroughUi(p2, 'member@example.com', 'Max Member');
      await api(await tokenOf(page), 'POST', `/api/projects/${projectId}/members`, {
        email: 'member@example.com',
        role: 'editor',
      });
      await p2.goto(`${server.url}/projects/${projectId}`);
      await p2.locator('.tree').getByText('index.html').click();
      await expect.poll(() => editorText(p2)).toContain('Edited in the browser');
      await expect
        .poll(() => p2.getByTestId('connection').textContent(), { timeout: 15_000 })
        .toContain('live');

      // The owner changes the open file and creates another; the member sees both without reloading.
      await showView(page, 'Explorer');
      await page.locator('.tree').getByText('index.html').click();
      await page.locator('.monaco-editor .view-lines').click();
      await page.keyboard.press('Control+End');
      await page.keyboard.insertText(' and again');
      await page.keyboard.press('Control+S');
      await page.locator('.tab.active .dirty-dot').waitFor({ state: 'detached' });
      await api(await tokenOf(page), 'PUT', `/api/projects/${projectId}/files/live.txt`, {
        content: 'hi',
      });

      await expect.poll(() => editorText(p2), { timeout: 15_000 }).toContain('and again');
      await p2.locator('.tree').getByText('live.txt').waitFor({ timeout: 15_000 });
      await shot(p2, 'second-member');
    } finally {
      await other.close();
    }
  });

  it('has a light theme, a command palette and quick open from the keyboard', async () => {
    await page.keyboard.press('Control+Shift+P');
    await page.getByRole('combobox', { name: 'Type a command' }).fill('>light');
    await page.keyboard.press('Enter');
    await expect
      .poll(() => page.evaluate(() => document.documentElement.dataset.theme))
      .toBe('light');
    await page.keyboard.press('Control+P');
    await page.getByRole('combobox', { name: 'Type a file name' }).fill('srvjs');
    await page.keyboard.press('Enter');
    await page.locator('.tab.active[data-path="server.js"]').waitFor();
    await shot(page, 'workbench-light');
  });

  it('logged no console errors in normal use', () => {
    expect(consoleErrors).toEqual([]);
  });
});
