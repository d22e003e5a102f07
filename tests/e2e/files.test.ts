// Files as a person handles them, in real Chromium against the real server (process runtime:
// no container is needed): the wizard's template path and the set-up page that opens the IDE by
// itself; delete → Recently deleted → Restore; upload by the button and by dropping a file; a
// dropped .zip imported; a file downloaded from its context menu and the project zip named after
// the project; an image previewed and another binary offered for download; a second person's
// dashboard shows a project they are added to without a reload; an env change that needs a
// restart says so in another member's open IDE. Fails on any console error.
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { ConsoleWatch, launchChromium, patientExpect, screenshotOnFailure } from './browser.ts';
import { startFakeAnthropic, type FakeAnthropic } from './fake-anthropic.ts';
import { signUpThroughUi, type PersonInBrowser } from './people.ts';
import { startServer, type RunningServer } from './server.ts';

const expect = patientExpect(15_000, 100);

const projectName = 'Files Tour';

let server: RunningServer;
let fake: FakeAnthropic;
let browser: Browser;
let page: Page;
let fay: PersonInBrowser;
let projectId: string;
const browserLog = new ConsoleWatch();

/** Watches a page's console, and logs which requests failed (the console does not say). */
function watch(p: Page, who: string): void {
  browserLog.watch(p, who);
  p.on('response', (r) => {
    if (r.status() >= 400) console.log(`${who}: ${r.status()} ${r.request().method()} ${r.url()}`);
  });
}

const tree = () => page.locator('.tree');
const row = (p: string) => page.locator(`.tree-row[data-path="${p}"]`);

/** Drops files on the explorer (or on a row) the way a browser does: a DragEvent with files. */
async function drop(files: { name: string; base64: string; type?: string }[], onto = '.explorer') {
  await page.evaluate(
    ({ files, onto }) => {
      const dt = new DataTransfer();
      for (const f of files) {
        const bytes = Uint8Array.from(atob(f.base64), (c) => c.charCodeAt(0));
        dt.items.add(new File([bytes], f.name, { type: f.type ?? '' }));
      }
      const target = document.querySelector(onto)!;
      for (const type of ['dragenter', 'dragover', 'drop'])
        target.dispatchEvent(
          new DragEvent(type, { dataTransfer: dt, bubbles: true, cancelable: true }),
        );
    },
    { files, onto },
  );
}

// ── a stored (uncompressed) zip, built here: no tool needed ──
const crcTable = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(b: Buffer): number {
  let c = 0xffffffff;
  for (const byte of b) c = crcTable[(c ^ byte) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
function storedZip(entries: Record<string, string>): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const [name, text] of Object.entries(entries)) {
    const data = Buffer.from(text);
    const nameBytes = Buffer.from(name);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt32LE(crc32(data), 14);
    local.writeUInt32LE(data.length, 18);
    local.writeUInt32LE(data.length, 22);
    local.writeUInt16LE(nameBytes.length, 26);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(20, 4);
    central.writeUInt16LE(20, 6);
    central.writeUInt32LE(crc32(data), 16);
    central.writeUInt32LE(data.length, 20);
    central.writeUInt32LE(data.length, 24);
    central.writeUInt16LE(nameBytes.length, 28);
    central.writeUInt32LE(offset, 42);
    locals.push(local, nameBytes, data);
    centrals.push(central, nameBytes);
    offset += 30 + nameBytes.length + data.length;
  }
  const dir = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(centrals.length / 2, 8);
  end.writeUInt16LE(centrals.length / 2, 10);
  end.writeUInt32LE(dir.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, dir, end]);
}

// A 2×1 PNG (red, blue).
const png = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAIAAAABCAIAAAB7QOjdAAAAEElEQVR4nGP4z8DAwMDwHwAE/gH/1ZzvSAAAAABJRU5ErkJggg==',
  'base64',
);

beforeAll(async () => {
  // No container needed: the process runtime starts the template's server in a moment.
  // The assistant of the "describe it" path: picks the template, edits the page (its text
  // streamed slowly enough to be seen on the set-up page), then says it is done.
  fake = await startFakeAnthropic([
    { text: 'node-http' },
    {
      text: 'I will put a welcome on the page.',
      stallMs: 1500,
      tools: [
        {
          name: 'edit_file',
          input: {
            path: 'index.html',
            old_str: '<h1>Hello from Vaporform</h1>',
            new_str: '<h1>Welcome, described app</h1>',
          },
        },
      ],
    },
    { text: 'Your welcome page is ready.' },
  ]);
  server = await startServer({
    env: {
      VAPORFORM_RUNTIME: 'process',
      ANTHROPIC_API_KEY: 'sk-ant-fake-e2e',
      ANTHROPIC_BASE_URL: fake.url,
    },
  });
  browser = await launchChromium();
  const context = await browser.newContext({
    viewport: { width: 1440, height: 900 },
    acceptDownloads: true,
  });
  page = await context.newPage();
  watch(page, 'owner');
}, 300_000);

afterAll(async () => {
  await browser?.close();
  await server?.stop();
  await fake?.close();
});

screenshotOnFailure('files', () => ({ owner: page }));

describe('files in the IDE', () => {
  it('the template path has two steps and the set-up page opens the IDE by itself', async () => {
    fay = await signUpThroughUi(server, page, 'Fay Files', 'files-owner@example.com');
    await page.getByRole('button', { name: 'New project' }).click();
    await page.getByLabel('Project name').fill(projectName);
    await page.getByRole('button', { name: 'Next' }).click();
    await expect.poll(() => page.locator('.steps li').count()).toBe(2);
    await page.getByText('Node.js HTTP (zero dependencies)').click();
    await page.getByRole('button', { name: 'Create project' }).click();
    await page.getByRole('heading', { name: /Setting up/ }).waitFor();
    projectId = /\/projects\/([^/]+)\/creating/.exec(page.url())![1]!;
    // No click: the page moves on once the dev server answers.
    await expect
      .poll(() => new URL(page.url()).pathname, { timeout: 60_000 })
      .toBe(`/projects/${projectId}`);
    await tree().getByText('index.html').waitFor();
    await page.screenshot({ path: path.join(tmpdir(), 'vf-files-ide.png') });
  });

  it('deletes a file, lists it in Recently deleted and restores it', async () => {
    // A file the preview does not load (its 404 would be a failed request of the page).
    await fay.api('PUT', `/api/projects/${projectId}/files/draft.txt`, {
      content: 'a draft\n',
    });
    await row('draft.txt').hover();
    await page.getByRole('button', { name: 'Delete draft.txt' }).click();
    const dialog = page.getByRole('dialog', { name: /Delete draft\.txt/ });
    await expect.poll(() => dialog.textContent()).toContain('Recently deleted');
    await dialog.getByRole('button', { name: 'Delete' }).click();
    await expect.poll(() => row('draft.txt').count()).toBe(0);

    await page.getByRole('button', { name: 'Recently deleted', exact: true }).click();
    const bin = page.getByRole('region', { name: 'Recently deleted' });
    await bin.getByText('draft.txt').waitFor();
    await page.screenshot({ path: path.join(tmpdir(), 'vf-files-recently-deleted.png') });
    await bin.getByRole('button', { name: 'Restore draft.txt' }).click();
    await row('draft.txt').waitFor();
    await expect.poll(() => bin.getByText('No deleted files.').isVisible()).toBe(true);
    await page.getByRole('button', { name: 'Close Recently deleted' }).click();
  });

  it('uploads with the button and by dropping files, and imports a dropped zip', async () => {
    await page.locator('.explorer input[type=file]').setInputFiles({
      name: 'notes.txt',
      mimeType: 'text/plain',
      buffer: Buffer.from('uploaded by the button\n'),
    });
    await row('notes.txt').waitFor();

    await drop([{ name: 'dropped.md', base64: Buffer.from('# Dropped\n').toString('base64') }]);
    await row('dropped.md').waitFor();

    const zip = storedZip({ 'lib/util.js': 'export const one = 1;\n', 'README.md': '# Zipped\n' });
    await drop([{ name: 'bundle.zip', base64: zip.toString('base64') }]);
    const offer = page.getByRole('dialog', { name: 'Import bundle.zip?' });
    await offer.getByRole('button', { name: 'Import its files' }).click();
    await row('README.md').waitFor();
    await row('lib/util.js').waitFor();
    // Imported, not uploaded as an archive.
    expect(await row('bundle.zip').count()).toBe(0);
    const util = await fay.api('GET', `/api/projects/${projectId}/files/lib/util.js`);
    expect(util.content).toBe('export const one = 1;\n');
  });

  it('downloads a file from its context menu and the project under its own name', async () => {
    await row('notes.txt').click({ button: 'right' });
    const menu = page.getByRole('menu', { name: 'Actions for notes.txt' });
    const [file] = await Promise.all([
      page.waitForEvent('download'),
      menu.getByRole('menuitem', { name: 'Download' }).click(),
    ]);
    expect(file.suggestedFilename()).toBe('notes.txt');
    expect(readFileSync((await file.path())!, 'utf8')).toBe('uploaded by the button\n');

    const [archive] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('button', { name: 'Download as zip' }).click(),
    ]);
    expect(archive.suggestedFilename()).toBe('Files-Tour.zip');
  });

  it('previews an image and offers other binaries for download', async () => {
    await page.locator('.explorer input[type=file]').setInputFiles([
      { name: 'logo.png', mimeType: 'image/png', buffer: png },
      {
        name: 'blob.bin',
        mimeType: 'application/octet-stream',
        buffer: Buffer.from([0, 1, 2, 255]),
      },
    ]);
    await row('logo.png').click();
    const img = page.getByTestId('image-preview').locator('img');
    await expect.poll(() => img.evaluate((i: HTMLImageElement) => i.naturalWidth)).toBe(2);
    await expect.poll(() => page.getByTestId('image-preview').textContent()).toContain('2×1');
    await page.screenshot({ path: path.join(tmpdir(), 'vf-files-image.png') });

    await row('blob.bin').click();
    const binary = page.getByTestId('binary-file');
    await expect.poll(() => binary.textContent()).toContain('binary file');
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      binary.getByRole('button', { name: 'Download blob.bin' }).click(),
    ]);
    expect(download.suggestedFilename()).toBe('blob.bin');
    expect([...readFileSync((await download.path())!)]).toEqual([0, 1, 2, 255]);
  });

  it('shows a second person a project they are added to without a reload, and an env change in their IDE', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 720 } });
    const second = await context.newPage();
    watch(second, 'second');
    await signUpThroughUi(server, second, 'Sam Second', 'files-second@example.com');
    await expect.poll(() => second.getByText('No projects yet.').isVisible()).toBe(true);
    await second.evaluate(() => ((window as unknown as { marker: number }).marker = 1));

    const added = Date.now();
    await fay.api('POST', `/api/projects/${projectId}/members`, {
      email: 'files-second@example.com',
      role: 'editor',
    });
    await second.getByText(projectName).waitFor({ timeout: 5_000 });
    console.log(`dashboard: added project shown ${Date.now() - added} ms after the request`);
    // The same page: no reload happened.
    expect(await second.evaluate(() => (window as unknown as { marker?: number }).marker)).toBe(1);

    // Their IDE is open; the owner changes an env var of the running project.
    await second.getByText(projectName).click();
    await second.locator('.tree').getByText('index.html').waitFor();
    await fay.api('PUT', `/api/projects/${projectId}/env`, { vars: { GREETING: 'hi' } });
    await second.getByText(/environment changed: restart/i).waitFor({ timeout: 10_000 });
    await second.getByRole('button', { name: 'Project settings', exact: true }).click();
    await second.getByTestId('env-restart').waitFor();
    await second.screenshot({ path: path.join(tmpdir(), 'vf-files-env-notice.png') });
    await context.close();
  });

  it('the "describe it" path streams what the assistant writes, and its chat keeps that turn', async () => {
    await page.goto(server.url + '/');
    await page.getByRole('button', { name: 'New project' }).click();
    await page.getByLabel('Project name').fill('Described');
    await page.getByLabel('Description').fill('A welcome page');
    await page.getByLabel('Functionality').fill('Welcomes visitors.');
    await page.getByRole('button', { name: 'Next' }).click();
    await page.getByText('Describe it to the AI').click();
    await expect.poll(() => page.locator('.steps li').count()).toBe(6);
    for (let i = 0; i < 4; i++) await page.getByRole('button', { name: 'Next' }).click();
    await page.getByRole('button', { name: 'Create project' }).click();
    await page.getByRole('heading', { name: /Setting up/ }).waitFor();
    const id = /\/projects\/([^/]+)\/creating/.exec(page.url())![1]!;
    const stream = page.getByLabel('What the assistant is writing');
    // Mid-sentence: the model is still writing (the fake stalls after its first words).
    await expect.poll(() => stream.textContent()).toMatch(/^I will put a/);
    await page.screenshot({ path: path.join(tmpdir(), 'vf-files-ai-stream.png') });
    await expect
      .poll(() => new URL(page.url()).pathname, { timeout: 60_000 })
      .toBe(`/projects/${id}`);

    await page.getByRole('button', { name: 'Assistant', exact: true }).click();
    const chat = page.getByRole('region', { name: 'Assistant' });
    await chat.getByText('Welcomes visitors.').waitFor();
    await chat.getByText('Your welcome page is ready.').waitFor();
    await chat.getByRole('button', { name: 'Review' }).click();
    await page.getByRole('dialog').getByText('index.html').first().waitFor();
    await page.screenshot({ path: path.join(tmpdir(), 'vf-files-ai-review.png') });
    await page.keyboard.press('Escape');
    await expect.poll(() => page.getByRole('dialog').count()).toBe(0);
    expect(await chat.getByRole('button', { name: 'Revert' }).isEnabled()).toBe(true);
    // The server ran the assistant once (not once for the project and once for the page).
    const history = await fay.api('GET', `/api/projects/${id}/chat`);
    expect(history.messages.map((m: { role: string }) => m.role)).toEqual(['user', 'assistant']);

    // The set-up page opened again once it is all done (a reload, the Back button, a link)
    // moves on to the IDE by itself too, and starts nothing twice.
    await page.goto(`${server.url}/projects/${id}/creating`);
    await expect
      .poll(() => new URL(page.url()).pathname, { timeout: 30_000 })
      .toBe(`/projects/${id}`);
    const after = await fay.api('GET', `/api/projects/${id}/chat`);
    expect(after.messages).toHaveLength(2);
  });

  it('logged no console errors', () => {
    // Any console error, a failed request too.
    expect(
      [...browserLog.errors, ...browserLog.failedRequests],
      browserLog.badResponses.join('\n'),
    ).toEqual([]);
  });
});
