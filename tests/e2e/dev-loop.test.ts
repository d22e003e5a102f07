// The core loop as a person lives it, in real Chromium against the real server, on the process
// runtime and on the Docker runtime: open a node-http project → the preview is up without a
// click → edit and save → the preview shows it without a click (timed) → the terminal changes
// files and the IDE shows it → break server.js → the crash and its error are shown → "Fix with AI"
// (fake provider) repairs it → the preview is back; a Stop is respected and shown as stopped.
// Plus: two people one after the other on one browser never see each other's drafts, and a role
// change reaches the open IDE. Any console error or failed request fails the test.
import { request } from 'node:http';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { ConsoleWatch, editorText, launchChromium, patientExpect, shot } from './browser.ts';
import { startFakeAnthropic, type FakeAnthropic, type FakeTurn } from './fake-anthropic.ts';
import { callApi as api, password, signInThroughUi, signUpThroughUi, tokenOf } from './people.ts';
import { startServer, type RunningServer } from './server.ts';

const expect = patientExpect(20_000, 100);
const dockerHost = process.env.DOCKER_HOST ?? 'unix:///tmp/vf-docker/docker.sock';
const ci = process.env.CI === 'true';

/** True when the Docker engine at `host` answers /_ping. */
function dockerAnswers(host: string): Promise<boolean> {
  if (!host.startsWith('unix://')) return Promise.resolve(false);
  return new Promise((resolve) => {
    const req = request({ socketPath: host.slice(7), path: '/_ping', timeout: 1500 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => (req.destroy(), resolve(false)));
    req.end();
  });
}

const dockerUp = await dockerAnswers(dockerHost);
let browser: Browser;
/** The fake provider's script: each test pushes the turns it expects. */
const script: FakeTurn[] = [];
let fake: FakeAnthropic;
const figures: string[] = [];

beforeAll(async () => {
  fake = await startFakeAnthropic(script);
  browser = await launchChromium();
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await fake?.close();
  if (figures.length) console.log(figures.join('\n'));
});

async function signOutThroughUi(p: Page, name: string, expectWarning: boolean) {
  await p.getByRole('button', { name: `${name} ▾` }).click();
  await p.getByRole('menuitem', { name: 'Sign out' }).click();
  if (expectWarning) {
    const dialog = p.getByRole('alertdialog', { name: /unsaved changes/ });
    await dialog.waitFor();
    await dialog.getByRole('button', { name: 'Sign out' }).click();
  }
  await p.getByRole('button', { name: 'Sign in' }).waitFor();
}

/** Appends a line to the active editor and saves it with Ctrl+S; resolves once saved. */
async function appendAndSave(p: Page, text: string): Promise<number> {
  await p.locator('.monaco-editor .view-lines').click();
  await p.keyboard.press('Control+End');
  await p.keyboard.press('Enter');
  await p.keyboard.insertText(text);
  await p.locator('.tab.active .dirty-dot').waitFor();
  const started = Date.now();
  await p.keyboard.press('Control+S');
  return started;
}

async function openInEditor(p: Page, file: string) {
  await p.locator('.tree').getByText(file, { exact: true }).click();
  await p.locator(`.tab.active[data-path="${file}"]`).waitFor();
  await p.locator('.monaco-editor .view-lines').waitFor();
}

const runtimes = [
  { kind: 'process', env: { VAPORFORM_RUNTIME: 'process' } },
  { kind: 'docker', env: { VAPORFORM_RUNTIME: 'docker', DOCKER_HOST: dockerHost } },
] as const;

describe.each(runtimes)('the dev loop on the $kind runtime', ({ kind, env }) => {
  const available = kind === 'process' || dockerUp;
  // Under CI a missing engine is a failure, never a skip.
  const run = available || ci ? it : it.skip;
  let server: RunningServer;
  let context: BrowserContext;
  let page: Page;
  let projectId: string;
  let originalServer: string;
  const pages = new ConsoleWatch();

  beforeAll(async () => {
    if (!available) {
      if (ci) throw new Error(`CI=true and no Docker engine answers at ${dockerHost}`);
      return;
    }
    server = await startServer({
      env: { ANTHROPIC_API_KEY: 'sk-ant-fake-e2e', ANTHROPIC_BASE_URL: fake.url, ...env },
      publicHost: 'localhost',
    });
    context = await browser.newContext({
      viewport: { width: 1440, height: 900 },
      colorScheme: 'dark',
    });
    page = await context.newPage();
    pages.watch(page, 'ada');
  }, 300_000);

  afterAll(async () => {
    await context?.close();
    await server?.stop();
  });

  run('opens a new node-http project with its preview up, without a click', async () => {
    await signUpThroughUi(server, page, 'Ada', `ada-${kind}@example.com`);
    const token = await tokenOf(page);
    const { project } = await api(server, token, 'POST', '/api/projects', {
      name: `loop-${kind}`,
      templateId: 'node-http',
    });
    projectId = project.id;
    originalServer = (
      await api(server, token, 'GET', `/api/projects/${projectId}/files/server.js`).catch(
        async () => {
          await new Promise((r) => setTimeout(r, 2000));
          return api(server, token, 'GET', `/api/projects/${projectId}/files/server.js`);
        },
      )
    ).content;
    await page.goto(`${server.url}/projects/${projectId}`);
    await page.locator('.tree').getByText('index.html').waitFor();
    const frame = page.frameLocator('[data-testid=preview-frame]');
    await frame.getByText('Hello from Vaporform').waitFor({ timeout: 90_000 });
    await expect
      .poll(() => page.getByTestId('container-status').textContent())
      .toContain('running');
  });

  run('shows a save in the preview by itself, quickly', async () => {
    await openInEditor(page, 'index.html');
    await expect.poll(() => editorText(page)).toContain('Hello from Vaporform');
    const frame = page.frameLocator('[data-testid=preview-frame]');
    const times: number[] = [];
    const saved: number[] = [];
    for (let i = 1; i <= 7; i++) {
      const marker = `vf-save-${kind}-${i}`;
      const started = await appendAndSave(page, marker);
      const shown = frame.getByText(marker).waitFor({ timeout: 15_000 });
      await page.locator('.tab.active .dirty-dot').waitFor({ state: 'detached' });
      saved.push(Date.now() - started);
      await shown;
      times.push(Date.now() - started);
    }
    const sorted = [...times].sort((a, b) => a - b);
    const p50 = sorted[Math.floor(sorted.length / 2)]!;
    figures.push(
      `save → preview shows it (${kind}, node-http): p50 ${p50} ms, all [${times.join(', ')}] ms` +
        ` (the save itself answered after [${saved.join(', ')}] ms)`,
    );
    if (kind === 'process') await shot(page, 'preview-live');
    // The target is 500 ms on a quiet machine; this bound (measured 1.4–3.5 s with a load
    // average of 14 on 2 cores) catches a preview that waits for a poll or a click.
    expect(p50).toBeLessThan(Number(process.env.VF_E2E_SAVE_P50_MS ?? 5_000));
  });

  run('runs npm pkg set and echo >> in the terminal, and the IDE shows the change', async () => {
    await openInEditor(page, 'package.json');
    await page.getByRole('button', { name: 'Terminal', exact: true }).click();
    const term = page.locator('[data-testid=terminal]').first();
    await expect
      .poll(() => page.locator('.terminal-view').first().getAttribute('data-status'))
      .toBe('open');
    await term.click();
    await page.keyboard.type('npm pkg set description=x && echo pkg-ok-$((40+2))\n');
    await expect
      .poll(() => term.locator('.xterm-rows').textContent(), { timeout: 60_000 })
      .toContain('pkg-ok-42');
    await expect.poll(() => editorText(page)).toContain('"description": "x"');

    // Space and Enter typed into the terminal stay there: "+" never keeps the focus.
    await page.getByRole('button', { name: 'New terminal' }).click();
    await expect.poll(() => page.locator('.terminal-view').count()).toBe(2);
    await expect
      .poll(() => page.locator('.terminal-view:not([hidden])').getAttribute('data-status'))
      .toBe('open');
    await page.keyboard.type('echo hi >> index.html && echo app-ok-$((2+3))\n');
    await expect.poll(() => page.locator('.terminal-view').count()).toBe(2);
    await expect
      .poll(() => page.locator('.terminal-view:not([hidden]) .xterm-rows').textContent(), {
        timeout: 30_000,
      })
      .toContain('app-ok-5');
    await openInEditor(page, 'index.html');
    await expect.poll(() => editorText(page)).toMatch(/hi\s*$/);
    await page
      .frameLocator('[data-testid=preview-frame]')
      .getByText(`vf-save-${kind}-7hi`)
      .waitFor({ timeout: 15_000 });
    if (kind === 'process') await shot(page, 'terminal-loop');
  });

  run('shows a crash with its error, and "Fix with AI" repairs it', async () => {
    await openInEditor(page, 'server.js');
    await appendAndSave(page, 'this is not javascript');
    await page.locator('.tab.active .dirty-dot').waitFor({ state: 'detached' });
    const crash = page.getByTestId('preview-crash');
    await crash.waitFor({ timeout: 30_000 });
    await expect.poll(() => crash.textContent()).toContain('SyntaxError');
    await expect
      .poll(() => page.getByTestId('container-status').textContent())
      .toMatch(/crashed.*SyntaxError/);
    if (kind === 'process') await shot(page, 'crash');

    script.push(
      {
        text: 'The last line of server.js is not JavaScript; I will remove it.',
        tools: [{ name: 'write_file', input: { path: 'server.js', content: originalServer } }],
      },
      { text: 'Fixed: server.js starts again.' },
    );
    const before = fake.requests.length;
    await crash.getByRole('button', { name: 'Fix with AI' }).click();
    await expect
      .poll(() => page.locator('[data-testid=chat-assistant]').last().textContent(), {
        timeout: 30_000,
      })
      .toContain('Fixed');
    // The assistant got the error and the log.
    const asked = JSON.stringify(fake.requests[before]);
    expect(asked).toContain('The dev server crashed');
    expect(asked).toContain('SyntaxError');
    await page
      .frameLocator('[data-testid=preview-frame]')
      .getByText('Hello from Vaporform')
      .waitFor({ timeout: 30_000 });
    await expect
      .poll(() => page.getByTestId('container-status').textContent(), { timeout: 60_000 })
      .toContain('running');
    if (kind === 'process') await shot(page, 'fixed-by-ai');
  });

  run('restores a version from the history diff, and Escape closes the dialog', async () => {
    if (kind !== 'process') return; // the IDE alone: once is enough
    await page.getByRole('button', { name: 'Explorer', exact: true }).click();
    await openInEditor(page, 'style.css');
    await appendAndSave(page, '/* v2 */');
    await page.locator('.tab.active .dirty-dot').waitFor({ state: 'detached' });
    await page.getByRole('button', { name: 'File history', exact: true }).click();
    await page.getByRole('button', { name: 'Compare version 1 with the current text' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByTestId('diff-view').locator('.monaco-diff-editor').waitFor();
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached' });
    await page.getByRole('button', { name: 'Compare version 1 with the current text' }).click();
    await dialog.getByTestId('diff-view').locator('.monaco-diff-editor').waitFor();
    await dialog.getByRole('button', { name: 'Restore v1' }).click();
    await dialog.waitFor({ state: 'detached' });
    await expect.poll(() => editorText(page)).not.toContain('/* v2 */');
    await page.waitForTimeout(1_000); // the disposed diff editor's debounced work would throw now
    await page.getByRole('button', { name: 'Explorer', exact: true }).click();
  });

  run(
    'respects a Stop: shown as stopped, not started again on return; terminals wait quietly',
    async () => {
      await page.keyboard.press('Control+Shift+P');
      await page.getByRole('combobox', { name: 'Type a command' }).fill('>Container: Stop');
      await page.keyboard.press('Enter');
      await page.getByText('The dev server is stopped').waitFor({ timeout: 30_000 });
      await expect
        .poll(() => page.getByTestId('container-status').textContent())
        .toContain('stopped');
      expect(await page.getByTestId('container-status').textContent()).not.toMatch(/143|exited/);
      await expect
        .poll(() => page.locator('.terminal-view:not([hidden])').getAttribute('data-status'))
        .toBe('waiting');
      // Coming back later: still stopped (the person asked), and no reconnect storm.
      await page.reload();
      await page.locator('.tree').getByText('index.html').waitFor();
      await page.waitForTimeout(3_000);
      await expect
        .poll(() => page.getByTestId('container-status').textContent())
        .toContain('stopped');
      if (kind === 'process') await shot(page, 'stopped');
      await page.getByRole('button', { name: 'Start dev server' }).click();
      await page
        .frameLocator('[data-testid=preview-frame]')
        .getByText('Hello from Vaporform')
        .waitFor({ timeout: 60_000 });
    },
  );

  run('starts a stopped project on opening (a stop nobody asked for in this browser)', async () => {
    const token = await tokenOf(page);
    await page.goto(`${server.url}/`);
    await api(server, token, 'POST', `/api/containers/${projectId}/stop`);
    await page.goto(`${server.url}/projects/${projectId}`);
    await page
      .frameLocator('[data-testid=preview-frame]')
      .getByText('Hello from Vaporform')
      .waitFor({ timeout: 60_000 });
  });

  run('logged no console error and no failed request', () => {
    expect(pages.problems()).toEqual([]);
  });
});

describe('people on one browser, and a role change', () => {
  let server: RunningServer;
  let context: BrowserContext;
  let page: Page;
  const pages = new ConsoleWatch();

  beforeAll(async () => {
    server = await startServer({
      env: {
        ANTHROPIC_API_KEY: 'sk-ant-fake-e2e',
        ANTHROPIC_BASE_URL: fake.url,
        VAPORFORM_RUNTIME: 'process',
      },
      publicHost: 'localhost',
    });
    context = await browser.newContext({ viewport: { width: 1280, height: 720 } });
    page = await context.newPage();
    pages.watch(page, 'shared browser');
  }, 300_000);

  afterAll(async () => {
    await context?.close();
    await server?.stop();
  });

  // Text files are co-edited live (WS /api/collab): what one types there is saved for everyone at
  // once, so it is no private draft. A file over the live-editing cap (1 MiB) is still edited with
  // load/save, and its unsaved text is a draft kept on the device for its owner alone.
  it('never shows one person’s unsaved draft to the next one signing in', async () => {
    await signUpThroughUi(server, page, 'First', 'first@example.com');
    const firstToken = await tokenOf(page);
    const { project } = await api(server, firstToken, 'POST', '/api/projects', {
      name: 'shared',
      templateId: 'node-http',
    });
    const second = await fetch(`http://127.0.0.1:${server.port}/api/auth/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: 'second@example.com', password, name: 'Second' }),
    });
    expect(second.status).toBe(201);
    await api(server, firstToken, 'POST', `/api/projects/${project.id}/members`, {
      email: 'second@example.com',
      role: 'editor',
    });

    const filler = Array.from({ length: 12_000 }, (_, i) => `line ${i} ${'x'.repeat(90)}`);
    await api(server, firstToken, 'PUT', `/api/projects/${project.id}/files/big.txt`, {
      content: ['Hello from a big file', ...filler].join('\n') + '\n',
    });

    await page.goto(`${server.url}/projects/${project.id}`);
    await page.locator('.tree').getByText('big.txt').waitFor({ timeout: 30_000 });
    await openInEditor(page, 'big.txt');
    await expect.poll(() => editorText(page), { timeout: 30_000 }).toContain('Hello from a big');
    await page.locator('.monaco-editor .view-lines').click();
    await page.keyboard.press('Control+Home');
    await page.keyboard.insertText('first-private-draft ');
    await page.locator('.tab.active .dirty-dot').waitFor();
    // Signing out with unsaved text warns first.
    await signOutThroughUi(page, 'First', true);

    await signInThroughUi(server, page, 'second@example.com');
    await page.goto(`${server.url}/projects/${project.id}`);
    await openInEditor(page, 'big.txt');
    await expect.poll(() => editorText(page), { timeout: 30_000 }).toContain('Hello from a big');
    expect(await editorText(page)).not.toContain('first-private-draft');
    expect(await page.locator('.tab .dirty-dot').count()).toBe(0);
    expect(
      await page.evaluate(() =>
        Object.keys(localStorage)
          .filter((k) => k.startsWith('vf.draft:'))
          .map((k) => localStorage.getItem(k))
          .join(''),
      ),
    ).toContain('first-private-draft'); // still on the device, for its owner
    await shot(page, 'drafts-second-user');
    await signOutThroughUi(page, 'Second', false);

    await signInThroughUi(server, page, 'first@example.com');
    await page.goto(`${server.url}/projects/${project.id}`);
    await page.locator('.tab[data-path="big.txt"] .dirty-dot').waitFor({ timeout: 15_000 });
    await openInEditor(page, 'big.txt');
    await expect.poll(() => editorText(page)).toContain('first-private-draft');
  });

  it('turns the open IDE read-only on a downgrade, and shows a removed member out', async () => {
    const second = await browser.newContext({ viewport: { width: 1280, height: 720 } });
    try {
      const p2 = await second.newPage();
      pages.watch(p2, 'second');
      await signInThroughUi(server, p2, 'second@example.com');
      const firstToken = await tokenOf(page);
      const { projects } = await api(server, firstToken, 'GET', '/api/projects');
      const id = projects[0].id as string;
      const { members } = await api(server, firstToken, 'GET', `/api/projects/${id}/members`);
      const member = members.find((m: { email: string }) => m.email === 'second@example.com');
      await p2.goto(`${server.url}/projects/${id}`);
      await expect.poll(() => p2.getByTestId('connection').textContent()).toContain('live');
      await expect.poll(() => p2.locator('.statusbar').textContent()).toContain('editor');
      // The preview has loaded, styles too, as the person sees it before the role changes:
      // once they are removed, what it still asked for would rightly be refused (404).
      const preview = () =>
        p2.frames().find((f) => new URL(f.url()).hostname.includes('.preview.'));
      await expect.poll(() => preview()?.url() ?? '', { timeout: 30_000 }).toMatch(/\/$/);
      await preview()!.locator('h1').waitFor({ timeout: 30_000 });
      await preview()!.waitForLoadState('load');

      await api(server, firstToken, 'PATCH', `/api/projects/${id}/members/${member.userId}`, {
        role: 'viewer',
      });
      await expect
        .poll(() => p2.locator('.statusbar').textContent(), { timeout: 5_000 })
        .toContain('viewer');
      await p2.getByText('read-only').first().waitFor({ timeout: 5_000 });

      await api(server, firstToken, 'DELETE', `/api/projects/${id}/members/${member.userId}`);
      await p2.getByRole('heading', { name: 'Projects' }).waitFor({ timeout: 5_000 });
      await p2.getByText('no longer a member').waitFor({ timeout: 5_000 });
    } finally {
      await second.close();
    }
  });

  it('logged no console error and no failed request', () => {
    expect(pages.problems()).toEqual([]);
  });
});
