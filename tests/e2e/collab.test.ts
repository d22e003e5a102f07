// Live co-editing in real Chromium against the real server (WS /api/collab): two people in two
// browser contexts type into one file at the same time and end with the same text, see each
// other's cursor with its name, undo only their own edits; a change through the API appears in
// the open editors without a reload; a reload keeps everything; a viewer gets a read-only
// editor that says so. Writes docs/screenshots/collab-*.png.
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, it } from 'vitest';
import {
  ConsoleWatch,
  editorText,
  launchChromium,
  patientExpect,
  screenshotOnFailure,
  shot,
} from './browser.ts';
import { signUp, type PersonInBrowser } from './people.ts';
import { startServer, type RunningServer } from './server.ts';

// Poll for up to 15 s unless told otherwise (a loaded 2-core machine).
const expect = patientExpect(15_000, 100);

const FILE = 'shared.txt';

let server: RunningServer;
let browser: Browser;
let owner: PersonInBrowser;
let member: PersonInBrowser;
let alice: Page; // the owner's
let bob: Page; // the member's, invited as editor
let projectId: string;
const browserLog = new ConsoleWatch();

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
  server = await startServer({ publicHost: 'localhost' });
  browser = await launchChromium();
  const options = { viewport: { width: 1280, height: 760 }, colorScheme: 'dark' as const };
  [owner, member] = await signUp(server, browser, browserLog, options, [
    { who: 'owner', name: 'Alice Owner', email: 'alice@example.com' },
    { who: 'member', name: 'Bob Editor', email: 'bob@example.com' },
  ]);
  alice = owner.page;
  bob = member.page;
  const { project } = await owner.api('POST', '/api/projects', {
    name: `collab-${Date.now()}`,
    templateId: 'node-http',
  });
  projectId = project.id;
  await owner.api('PUT', `/api/projects/${projectId}/files/${FILE}`, {
    content: 'first line\nsecond line\n',
  });
  await owner.api('POST', `/api/projects/${projectId}/members`, {
    email: 'bob@example.com',
    role: 'editor',
  });
}, 300_000);

afterAll(async () => {
  await browser?.close();
  await server?.stop();
});

screenshotOnFailure('collab', () => ({ owner: alice, member: bob }));

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
        async () => (await owner.api('GET', `/api/projects/${projectId}/files/${FILE}`)).content,
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
        async () => (await owner.api('GET', `/api/projects/${projectId}/files/${FILE}`)).content,
        {
          timeout: 20_000,
        },
      )
      .toBe(current);
    await owner.api('PUT', `/api/projects/${projectId}/files/${FILE}`, {
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
    await owner.api('PATCH', `/api/projects/${projectId}/members/${member.id}`, { role: 'viewer' });
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
    expect(browserLog.errors).toEqual([]);
  });
});
