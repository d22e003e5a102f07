// Chromium for the browser tests: launching it, watching its pages' consoles, screenshots (of
// the main screens for the docs, of every page when a test fails), the editor's text, and an
// `expect` whose polls wait as long as a loaded 2-core machine needs.
import { mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { beforeEach, expect } from 'vitest';
import { repoRoot } from './server.ts';

export { launchChromium } from './chromium.ts';

/** Where the screenshots of the README and the docs go. */
export const screenshotDir = path.join(repoRoot, 'docs', 'screenshots');

/**
 * What the watched pages reported going wrong, each line prefixed with who saw it. Failed
 * requests are kept apart from the other console errors: some tests expect a few of them.
 */
export class ConsoleWatch {
  /** Console errors and uncaught exceptions. */
  readonly errors: string[] = [];
  /** The browser's "Failed to load resource: …" lines (a status of 4xx or 5xx, or no answer). */
  readonly failedRequests: string[] = [];
  /** Every answer of 400 or more the pages got, as `who: status METHOD url` (for diagnosis). */
  readonly badResponses: string[] = [];
  /** Requests that got no answer (a frame navigating away, which aborts its loads, aside). */
  readonly unanswered: string[] = [];

  /** Starts recording what `page` reports, under the name `who`. */
  watch(page: Page, who: string): void {
    page.on('console', (m) => {
      if (m.type() !== 'error') return;
      const text = m.text();
      (text.startsWith('Failed to load resource') ? this.failedRequests : this.errors).push(
        `${who}: ${text}`,
      );
    });
    page.on('pageerror', (err) => this.errors.push(`${who}: uncaught ${err.message}`));
    page.on('response', (res) => {
      if (res.status() >= 400)
        this.badResponses.push(`${who}: ${res.status()} ${res.request().method()} ${res.url()}`);
    });
    page.on('requestfailed', (req) => {
      // A frame navigated away (a reload after a save) aborts what it was loading: not a failure.
      if (req.failure()?.errorText === 'net::ERR_ABORTED') return;
      this.unanswered.push(`${who}: ${req.method()} ${req.url()} ${req.failure()?.errorText}`);
    });
  }

  /** Everything a person could notice went wrong: errors, refused and unanswered requests. */
  problems(): string[] {
    return [...this.errors, ...this.badResponses, ...this.unanswered];
  }
}

/**
 * Vitest's `expect` whose `expect.poll` waits `timeout` ms, checking every `interval` ms, unless
 * told otherwise (Monaco, xterm, sockets and dev servers take a moment on a loaded machine).
 */
export function patientExpect(timeout: number, interval: number): typeof expect {
  const basePoll = expect.poll.bind(expect);
  return Object.assign((value: unknown, message?: string) => expect(value, message), expect, {
    poll: ((fn: () => unknown, opts?: { timeout?: number; interval?: number }) =>
      basePoll(fn, { timeout, interval, ...opts })) as typeof expect.poll,
  }) as typeof expect;
}

/** Screenshots `page` to `<dir>/<name>.png` once the compositor shows its current DOM. */
export async function shot(page: Page, name: string, dir = screenshotDir): Promise<void> {
  // An out-of-process preview frame can leave the captured surface a few frames behind.
  await page.bringToFront();
  await page.evaluate(
    () => new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve))),
  );
  await page.waitForTimeout(300);
  mkdirSync(dir, { recursive: true });
  await page.screenshot({ path: path.join(dir, `${name}.png`) });
}

/**
 * When a test of this file fails, screenshots each of its pages to
 * `<tmp>/vf-e2e-<file>-<who>-<test>.png`. Call at the top level of a test file.
 */
export function screenshotOnFailure(file: string, pages: () => Record<string, Page | undefined>) {
  beforeEach(({ task, onTestFailed }) => {
    onTestFailed(async () => {
      const test = task.name.replace(/[^a-z0-9]+/gi, '-').slice(0, 60);
      for (const [who, page] of Object.entries(pages())) {
        await page
          ?.screenshot({ path: path.join(tmpdir(), `vf-e2e-${file}-${who}-${test}.png`) })
          .catch(() => undefined);
      }
    });
  });
}

/** The text the open Monaco editor of a page shows, its lines in screen order (Monaco reuses line nodes). */
export function editorText(page: Page): Promise<string> {
  return page.evaluate(() =>
    Array.from(document.querySelectorAll<HTMLElement>('.monaco-editor .view-line'))
      .sort((a, b) => parseFloat(a.style.top) - parseFloat(b.style.top))
      .map((l) => l.textContent ?? '')
      .join('\n')
      .replace(/\u00a0/g, ' '),
  );
}

/** Opens a side view unless it is already open (clicking the active one closes it, as in VS Code). */
export async function showView(page: Page, name: string): Promise<void> {
  const button = page.getByRole('button', { name, exact: true });
  if ((await button.getAttribute('aria-pressed')) !== 'true') await button.click();
}
