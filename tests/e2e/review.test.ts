// Reviewing an assistant turn hunk by hunk in Monaco's diff editor, in real Chromium against the
// real server (fake Anthropic API): the assistant changes two files in several places; until
// decided, its changes are marked pending in the editor's gutter and the explorer (a click on a
// mark opens the review); one change is accepted, another rejected, one returned to pending, a
// whole file rejected; the files hold exactly that. Another member's decisions show in the open
// dialog without reopening it (their checkpoint in the open timeline too). The turn can be
// reviewed again from the chat after a reload. Then the checkpoint made before the turn is restored from the timeline (its
// confirmation says what will change) and the files are back — in the open editor too — the
// turn's messages marked "after checkpoint".
// Screenshots: docs/screenshots/review-*.png.
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, it } from 'vitest';
import {
  ConsoleWatch,
  launchChromium,
  patientExpect,
  screenshotOnFailure,
  shot,
} from './browser.ts';
import { startFakeAnthropic, type FakeAnthropic } from './fake-anthropic.ts';
import {
  openPage,
  registerThroughApi,
  signUpThroughUi,
  type Person,
  type PersonInBrowser,
} from './people.ts';
import { startServer, type RunningServer } from './server.ts';

const expect = patientExpect(20_000, 100);

/** Twenty numbered lines; the assistant changes lines 3 and 16 (two hunks). */
const appBefore = Array.from({ length: 20 }, (_, i) => `const line${i + 1} = ${i + 1};\n`).join('');
const appAfter = appBefore
  .replace('const line3 = 3;\n', 'const line3 = 300; // changed by the assistant\n')
  .replace('const line16 = 16;\n', 'const line16 = 1600; // changed by the assistant\n');
const cssBefore = Array.from({ length: 14 }, (_, i) => `.c${i + 1} { margin: ${i + 1}px; }\n`).join(
  '',
);
const cssAfter = cssBefore
  .replace('.c2 { margin: 2px; }\n', '.c2 { margin: 20px; }\n')
  .replace('.c12 { margin: 12px; }\n', '.c12 { margin: 120px; }\n.c12b { padding: 0; }\n');

let server: RunningServer;
let fake: FakeAnthropic;
let browser: Browser;
let rita: PersonInBrowser;
let page: Page; // Rita's
let projectId: string;
/** A second editor of the project (set by the test of another member's decision). */
let bea: Person;
const browserLog = new ConsoleWatch();

async function content(file: string): Promise<string> {
  return (await rita.api('GET', `/api/projects/${projectId}/files/${file}`)).content as string;
}

beforeAll(async () => {
  fake = await startFakeAnthropic([
    {
      text: 'I will change both files.',
      tools: [
        { name: 'write_file', input: { path: 'app.js', content: appAfter } },
        { name: 'write_file', input: { path: 'style.css', content: cssAfter } },
      ],
    },
    { text: 'Changed app.js in two places and style.css in two places.' },
  ]);
  server = await startServer({
    env: { ANTHROPIC_API_KEY: 'sk-ant-fake-e2e', ANTHROPIC_BASE_URL: fake.url },
  });
  browser = await launchChromium();
  ({ page } = await openPage(browser, browserLog, 'rita', {
    viewport: { width: 1440, height: 900 },
    colorScheme: 'dark',
  }));

  // A member with a project holding the two files, signed in through the UI.
  rita = await signUpThroughUi(server, page, 'Rita Reviewer', 'rita@example.com');
  projectId = (await rita.api('POST', '/api/projects', { name: 'review-me', description: 'x' }))
    .project.id;
  await rita.api('PUT', `/api/projects/${projectId}/files/app.js`, { content: appBefore });
  await rita.api('PUT', `/api/projects/${projectId}/files/style.css`, { content: cssBefore });
}, 300_000);

afterAll(async () => {
  await browser?.close();
  await server?.stop();
  await fake?.close();
});

screenshotOnFailure('review', () => ({ rita: page }));

/**
 * The bar above hunk `n` (1-based) of the file shown in the review's diff editor. Monaco marks
 * its view zones aria-hidden, so their buttons are found by CSS, not by role.
 */
function hunkBar(n: number) {
  return page.locator('[data-testid=hunk-bar]').filter({ hasText: `Change ${n} of` });
}

/** The explorer's pending-review badge of a file ('' when it has none). */
async function explorerMark(file: string): Promise<string> {
  const mark = page.locator(`.tree-row[data-path="${file}"] [data-testid=pending-review-mark]`);
  return (await mark.count()) ? ((await mark.textContent()) ?? '') : '';
}

/** The text Monaco shows in the code editor (its spaces are no-break spaces). */
async function editorText(): Promise<string> {
  const text = await page.locator('[data-testid=code-editor] .view-lines').textContent();
  return (text ?? '').replace(/\u00a0/g, ' ');
}

/** Pending marks in the code editor's gutter (one per marked line Monaco renders). */
function gutterMarks() {
  return page.locator('[data-testid=code-editor] .margin-view-overlays .pending-mark');
}

describe('reviewing the assistant’s work', () => {
  it('accepts one hunk and rejects another in the diff editor; the files hold exactly that', async () => {
    await page.goto(`${server.url}/projects/${projectId}`);
    await page.locator('.tree').getByText('app.js').waitFor();
    const assistant = page.getByRole('button', { name: 'Assistant', exact: true });
    if ((await assistant.getAttribute('aria-pressed')) !== 'true') await assistant.click();
    await page.getByLabel('Message to the assistant').fill('Tune the numbers and the margins');
    await page.getByRole('button', { name: 'Send' }).click();
    const changeset = page.locator('[data-testid=changeset]').last();
    await changeset.waitFor({ timeout: 60_000 });
    await expect.poll(() => changeset.textContent()).toContain('style.css');
    await expect
      .poll(() => changeset.getByTestId('turn-pending').textContent())
      .toContain('4 changes to review');
    // The turn's own Review button opens it too.
    await changeset.getByRole('button', { name: 'Review' }).click();
    const dialog = page.getByTestId('review-dialog');
    await dialog.waitFor();
    await expect.poll(() => page.getByTestId('review-counts').textContent()).toBe('4 pending');
    await dialog.getByRole('button', { name: 'Close' }).click();
    await dialog.waitFor({ state: 'detached' });

    // Until decided, the changes are pending: a badge in the explorer, marks in the gutter.
    await page.getByRole('button', { name: 'Explorer', exact: true }).click();
    await expect.poll(() => explorerMark('app.js')).toBe('2');
    await expect.poll(() => explorerMark('style.css')).toBe('2');
    await page.locator('.tree-row[data-path="app.js"]').click();
    await expect.poll(() => gutterMarks().count()).toBe(2);
    await shot(page, 'review-pending-marks');
    // A click on a mark opens the review of that turn (beside the explorer, which follows it).
    await gutterMarks().first().click();
    await dialog.waitFor();
    await expect.poll(() => page.getByTestId('review-counts').textContent()).toBe('4 pending');
    await dialog.locator('[data-testid=review-file][data-path="app.js"] button').first().click();
    await hunkBar(2).waitFor();
    await expect.poll(() => hunkBar(1).getAttribute('data-state')).toBe('pending');
    await shot(page, 'review-pending');

    await hunkBar(1).locator('button[aria-label="Accept change 1"]').click();
    await expect.poll(() => hunkBar(1).getAttribute('data-state')).toBe('accepted');
    await hunkBar(2).locator('button[aria-label="Reject change 2"]').click();
    await expect.poll(() => hunkBar(2).getAttribute('data-state')).toBe('rejected');
    await expect
      .poll(() => page.getByTestId('review-counts').textContent())
      .toBe('2 pending · 1 accepted · 1 rejected');
    // Accepted: the assistant's line 3 stays; rejected: line 16 is the old one again.
    await expect
      .poll(() => content('app.js'))
      .toBe(
        appAfter.replace(
          'const line16 = 1600; // changed by the assistant\n',
          'const line16 = 16;\n',
        ),
      );
    await shot(page, 'review-decided');
    // Both changes of app.js decided: no mark on it any more; style.css keeps its two.
    await expect.poll(() => explorerMark('app.js')).toBe('');
    await expect.poll(() => explorerMark('style.css')).toBe('2');
    await expect.poll(() => gutterMarks().count()).toBe(0);

    // A decision reversed: the rejected change accepted instead, its text back in the file.
    await hunkBar(2).locator('button[aria-label="Accept change 2"]').click();
    await expect.poll(() => hunkBar(2).getAttribute('data-state')).toBe('accepted');
    await expect.poll(() => content('app.js')).toBe(appAfter);
    // Undone back to pending: marked again in the explorer and the gutter.
    await hunkBar(2).locator('button[aria-label="Return change 2 to pending"]').click();
    await expect.poll(() => hunkBar(2).getAttribute('data-state')).toBe('pending');
    await expect.poll(() => content('app.js')).toBe(appAfter);
    await expect.poll(() => explorerMark('app.js')).toBe('1');
    await expect.poll(() => gutterMarks().count()).toBe(1);
    await shot(page, 'review-undone-to-pending');
    await hunkBar(2).locator('button[aria-label="Reject change 2"]').click();
    await expect.poll(() => hunkBar(2).getAttribute('data-state')).toBe('rejected');

    // The other file, whole: rejected, so it is exactly as before the turn.
    await dialog.getByRole('button', { name: 'Reject every change in style.css' }).click();
    await expect
      .poll(() => page.getByTestId('review-counts').textContent())
      .toBe('1 accepted · 3 rejected');
    await expect.poll(() => content('style.css')).toBe(cssBefore);
    const activity = await rita.api('GET', `/api/projects/${projectId}/activity?limit=50`);
    const types = (activity.activity as { type: string }[]).map((a) => a.type);
    expect(types).toContain('ai_hunk_rejected');
    expect(types).toContain('ai_hunk_accepted');
    expect(types).toContain('ai_hunk_undone');
    await dialog.getByRole('button', { name: 'Close' }).click();
    await dialog.waitFor({ state: 'detached' });
    await expect.poll(() => explorerMark('style.css')).toBe('');
  });

  it('shows another member’s decision in the open review dialog without reopening it', async () => {
    // Bea, an editor of the project, decides through the API while Rita's dialog is open.
    bea = await registerThroughApi(server, 'Bea Second', 'bea@example.com');
    await rita.api('POST', `/api/projects/${projectId}/members`, {
      email: 'bea@example.com',
      role: 'editor',
    });
    const assistant = page.getByRole('button', { name: 'Assistant', exact: true });
    if ((await assistant.getAttribute('aria-pressed')) !== 'true') await assistant.click();
    const changeset = page.locator('[data-testid=changeset]').last();
    await changeset.getByRole('button', { name: 'Review' }).click();
    const dialog = page.getByTestId('review-dialog');
    await dialog.waitFor();
    await expect
      .poll(() => page.getByTestId('review-counts').textContent())
      .toBe('1 accepted · 3 rejected');
    await dialog.locator('[data-testid=review-file][data-path="style.css"] button').first().click();
    await expect.poll(() => hunkBar(1).getAttribute('data-state')).toBe('rejected');
    const changesetId = (await rita.api('GET', `/api/projects/${projectId}/chat`)).messages.find(
      (m: { changesetId: string | null }) => m.changesetId,
    ).changesetId as string;
    const turn = (await rita.api('GET', `/api/projects/${projectId}/changesets/${changesetId}`))
      .changeset as { files: { path: string; hunks: { id: string }[] }[] };
    const cssHunk = turn.files.find((f) => f.path === 'style.css')!.hunks[0]!.id;
    const hunkUrl = `/api/projects/${projectId}/changesets/${changesetId}/hunks/${cssHunk}`;

    await bea.api('POST', `${hunkUrl}/accept`);
    // Rita's dialog follows: the counts, the hunk's bar in the diff editor.
    await expect
      .poll(() => page.getByTestId('review-counts').textContent())
      .toBe('2 accepted · 2 rejected');
    await expect.poll(() => hunkBar(1).getAttribute('data-state')).toBe('accepted');
    await expect.poll(() => content('style.css')).not.toBe(cssBefore);
    // And back: Bea rejects it again, Rita sees that too.
    await bea.api('POST', `${hunkUrl}/reject`);
    await expect.poll(() => hunkBar(1).getAttribute('data-state')).toBe('rejected');
    await expect
      .poll(() => page.getByTestId('review-counts').textContent())
      .toBe('1 accepted · 3 rejected');
    await expect.poll(() => content('style.css')).toBe(cssBefore);
    await dialog.getByRole('button', { name: 'Close' }).click();
    await dialog.waitFor({ state: 'detached' });
  });

  it('reviews the turn again from the chat history after a reload', async () => {
    await page.reload();
    const explorer = page.getByRole('button', { name: 'Explorer', exact: true });
    await explorer.waitFor();
    if ((await explorer.getAttribute('aria-pressed')) !== 'true') await explorer.click();
    await page.locator('.tree-row[data-path="app.js"]').click();
    await expect.poll(editorText).toContain('const line3 = 300;');
    const assistant = page.getByRole('button', { name: 'Assistant', exact: true });
    if ((await assistant.getAttribute('aria-pressed')) !== 'true') await assistant.click();
    const changeset = page.locator('[data-testid=changeset]').last();
    await changeset.waitFor();
    await changeset.getByRole('button', { name: 'Review' }).click();
    const dialog = page.getByTestId('review-dialog');
    await dialog.waitFor();
    await expect
      .poll(() => page.getByTestId('review-counts').textContent())
      .toBe('1 accepted · 3 rejected');
    await shot(page, 'review-from-history');
    await dialog.getByRole('button', { name: 'Close' }).click();
    await dialog.waitFor({ state: 'detached' });
  });

  it('restores the checkpoint made before the turn from the timeline', async () => {
    await page.getByRole('button', { name: 'Checkpoints' }).click();
    const timeline = page.getByTestId('checkpoints');
    const before = timeline
      .getByTestId('checkpoint')
      .filter({ hasText: 'Before the assistant: Tune the numbers' });
    await before.waitFor();
    // A checkpoint saved by hand shows in the timeline too.
    await timeline.getByLabel('Checkpoint name').fill('After the review');
    await timeline.getByRole('button', { name: 'Save checkpoint' }).click();
    await timeline.getByTestId('checkpoint').filter({ hasText: 'After the review' }).waitFor();
    // Another member's checkpoint shows in the open timeline (a checkpoint_created event).
    await bea.api('POST', `/api/projects/${projectId}/checkpoints`, { name: 'Saved by Bea' });
    await timeline.getByTestId('checkpoint').filter({ hasText: 'Saved by Bea' }).waitFor();

    await before.getByRole('button', { name: /^Restore/ }).click();
    const confirm = page.getByTestId('restore-confirm');
    await confirm.waitFor();
    // app.js differs (line 3 was accepted); style.css is already as it was.
    await expect.poll(() => confirm.textContent()).toContain('1 file goes back to its content');
    await expect.poll(() => confirm.textContent()).toContain('app.js');
    await shot(page, 'review-restore-confirm');
    await confirm.getByRole('button', { name: 'Restore', exact: true }).click();
    await confirm.waitFor({ state: 'detached' });

    await expect.poll(() => content('app.js')).toBe(appBefore);
    await expect.poll(() => content('style.css')).toBe(cssBefore);
    // The open editor follows the restore (announced as one files_changed event).
    await expect.poll(editorText).toContain('const line3 = 3;');
    // The turn stays in the chat, marked as after the restored point.
    await expect
      .poll(() => page.locator('.chat-turn.after-checkpoint').count())
      .toBeGreaterThanOrEqual(2);
    await expect
      .poll(() => timeline.getByTestId('checkpoint').first().textContent())
      .toContain('Before restoring');
    await shot(page, 'review-restored');
    expect(browserLog.errors).toEqual([]);
  });
});
