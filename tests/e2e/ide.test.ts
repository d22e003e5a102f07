// The IDE in real Chromium against the real server: register → wizard (zero-dependency
// template) → files appear → edit and save → the preview shows it → the terminal echoes → the
// assistant (fake Anthropic API) creates a file, its diff shows, revert → a second member sees
// changes live. Writes screenshots of the main screens to docs/screenshots/.
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, it } from 'vitest';
import {
  ConsoleWatch,
  editorText,
  launchChromium,
  patientExpect,
  screenshotOnFailure,
  shot,
  showView,
} from './browser.ts';
import { startFakeAnthropic, type FakeAnthropic } from './fake-anthropic.ts';
import { openPage, signUpThroughUi, type PersonInBrowser } from './people.ts';
import { startServer, type RunningServer } from './server.ts';

// Monaco, xterm and the dev server take a moment: poll for up to 15 s unless told otherwise.
const expect = patientExpect(15_000, 100);

let server: RunningServer;
let fake: FakeAnthropic;
let browser: Browser;
let page: Page;
let owner: PersonInBrowser;
let projectId: string;
const browserLog = new ConsoleWatch();

beforeAll(async () => {
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
  browser = await launchChromium();
  ({ page } = await openPage(browser, browserLog, 'owner', {
    viewport: { width: 1440, height: 900 },
    colorScheme: 'dark',
  }));
}, 300_000);

afterAll(async () => {
  await browser?.close();
  await server?.stop();
  await fake?.close();
  if (browserLog.failedRequests.length)
    console.log(`failed requests seen by the browser:\n${browserLog.badResponses.join('\n')}`);
});

screenshotOnFailure('ide', () => ({ owner: page }));

describe('the web IDE in Chromium', () => {
  it('shows the sign-in form fast and lets a new user register', async () => {
    const started = Date.now();
    await page.goto(server.url + '/');
    await page.getByRole('button', { name: 'Sign in' }).waitFor();
    const toLogin = Date.now() - started;
    console.log(`first screen: sign-in form interactive after ${toLogin} ms`);
    expect(toLogin).toBeLessThan(5000);
    await shot(page, 'login');

    owner = await signUpThroughUi(server, page, 'Olivia Owner', 'owner@example.com');
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
    const file = await owner.api('GET', `/api/projects/${projectId}/files/index.html`);
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
    const { files } = await owner.api('GET', `/api/projects/${projectId}/files`);
    expect(files.map((f: { path: string }) => f.path)).not.toContain('NOTES.md');
    await showView(page, 'Explorer');
    await page.locator('.tree').getByText('NOTES.md').waitFor({ state: 'detached' });
  });

  it('a second member sees file changes live', async () => {
    const { context: other, page: p2 } = await openPage(browser, browserLog, 'member', {
      viewport: { width: 1280, height: 800 },
    });
    try {
      await signUpThroughUi(server, p2, 'Max Member', 'member@example.com');
      await owner.api('POST', `/api/projects/${projectId}/members`, {
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
      await owner.api('PUT', `/api/projects/${projectId}/files/live.txt`, {
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
    expect(browserLog.errors).toEqual([]);
  });
});
