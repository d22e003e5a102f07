// Debian's Chromium for the browser tests and the web benchmark (no vitest here: bench/ runs it
// outside the test runner).
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

/**
 * Starts headless Chromium (Debian's /usr/bin/chromium, or VF_CHROMIUM).
 * @throws when it is not installed, saying how to install it.
 */
export async function launchChromium(): Promise<Browser> {
  const executablePath = process.env.VF_CHROMIUM ?? '/usr/bin/chromium';
  if (!existsSync(executablePath)) {
    throw new Error(
      `Chromium not found at ${executablePath}: apt-get install chromium (CI installs it)`,
    );
  }
  return chromium.launch({
    executablePath,
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
}
