// The infrastructure manager in real Chromium against the real server, the real `terraform` CLI
// and a real Docker engine (local target, machines running the real bundled agent): an admin
// opens the panel, provisions 2 local machines and watches Terraform's progress reach ready,
// sees both agents online, runs `echo hi` on both (2 results, exit 0), deploys the project (per
// machine success and the app's URL), opens a shell on a machine and runs a command in it, then
// destroys the deployment after the confirmation. An editor sees the same deployment read-only.
// Screenshots: /tmp/infra-*.png (1280×720).
import { execFileSync, spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import type { Browser, Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { ConsoleWatch, launchChromium, patientExpect, shot as shotTo } from './browser.ts';
import { signUp, type PersonInBrowser } from './people.ts';
import { dockerAnswers, startServer, type RunningServer } from './server.ts';

const expect = patientExpect(30_000, 200);

let server: RunningServer;
let browser: Browser;
let ada: PersonInBrowser;
let admin: Page; // Ada's
let editor: Page; // Ed's
let projectId: string;
let deploymentId: string | undefined;
const browserLog = new ConsoleWatch();
const timings: Record<string, number> = {};

/** Screenshots a page to /tmp/infra-<name>.png. */
function shot(p: Page, name: string): Promise<void> {
  return shotTo(p, `infra-${name}`, tmpdir());
}

/** Opens the project with its dev container left stopped (nothing here needs it). */
async function openPanel(p: Page): Promise<void> {
  await p.evaluate((id) => localStorage.setItem(`vf.stopped:${id}`, '1'), projectId);
  await p.goto(`${server.url}/projects/${projectId}`);
  await p.getByRole('button', { name: 'Infrastructure', exact: true }).click();
  await p.getByRole('heading', { name: 'Infrastructure' }).waitFor();
}

/** The containers or the networks Docker holds for deployment `id`. */
function held(kind: 'container' | 'network', id: string): string[] {
  const list = kind === 'container' ? ['ps', '-a'] : ['network', 'ls'];
  const args = [...list, '--filter', `label=vaporform.deployment=${id}`, '--format', '{{.ID}}'];
  return execFileSync('docker', args, { encoding: 'utf8' }).split('\n').filter(Boolean);
}

/** Containers and networks Docker still holds for the deployment. */
function leftovers(id: string): string[] {
  return [...held('container', id), ...held('network', id)];
}

beforeAll(async () => {
  execFileSync('terraform', ['version']);
  if (!(await dockerAnswers())) throw new Error('No Docker engine answers (set DOCKER_HOST)');
  server = await startServer();
  browser = await launchChromium();
  const options = { viewport: { width: 1280, height: 720 }, colorScheme: 'dark' as const };
  let ed: PersonInBrowser;
  [ada, ed] = await signUp(server, browser, browserLog, options, [
    { who: 'admin', name: 'Ada Admin', email: 'ada@example.com' },
    { who: 'editor', name: 'Ed Editor', email: 'ed@example.com' },
  ]);
  admin = ada.page;
  editor = ed.page;
  const { project } = await ada.api('POST', '/api/projects', {
    name: 'infra-e2e',
    templateId: 'node-http',
  });
  projectId = project.id;
  await ada.api('POST', `/api/projects/${projectId}/members`, {
    email: 'ed@example.com',
    role: 'editor',
  });
}, 300_000);

afterAll(async () => {
  await browser?.close();
  // Whatever the test left (a failure before Destroy): removed through Docker.
  if (deploymentId && server) {
    const containers = held('container', deploymentId);
    if (containers.length)
      execFileSync('docker', ['rm', '-fv', ...containers], { stdio: 'ignore' });
    const networks = held('network', deploymentId);
    if (networks.length)
      execFileSync('docker', ['network', 'rm', ...networks], { stdio: 'ignore' });
  }
  await server?.stop();
  console.log(`infrastructure e2e timings (ms): ${JSON.stringify(timings)}`);
}, 120_000);

/**
 * Waits until the machine `rows` show both agents online. If it never does, says what the API
 * holds and what each machine's bootstrap printed: a page that missed an update and an agent
 * that never connected look the same on the page.
 */
async function bothAgentsOnline(rows: Locator): Promise<void> {
  try {
    await expect
      .poll(() => rows.evaluateAll((r) => r.map((x) => x.getAttribute('data-agent'))), {
        timeout: 60_000,
      })
      .toEqual(['online', 'online']);
  } catch (error) {
    const { deployments } = await ada.api('GET', `/api/infrastructure?projectId=${projectId}`);
    console.log(`agents by the API: ${JSON.stringify(deployments[0]?.machines)}`);
    for (const id of held('container', deploymentId!)) {
      const logs = spawnSync('docker', ['logs', '--tail', '30', id], { encoding: 'utf8' });
      console.log(`machine container ${id}:\n${logs.stdout}${logs.stderr}`);
    }
    throw error;
  }
}

describe('the infrastructure manager', () => {
  it('provisions 2 local machines, runs a command, deploys, opens a shell and destroys', async () => {
    const t0 = Date.now();
    await openPanel(admin);
    // No deployment yet: the provision form, local needs no credentials, clouds say theirs.
    const form = admin.locator('form.infra-provision');
    await form.waitFor();
    await expect.poll(() => form.textContent()).toContain('no credentials needed');
    await expect.poll(() => form.textContent()).toMatch(/aws.*credentials missing/);
    await form.getByLabel('Machines').fill('2');
    await shot(admin, 'provision');
    await form.getByRole('button', { name: 'Provision' }).click();

    // Terraform's live progress: stages, a progress bar, resources appearing.
    const run = admin.getByTestId('run-progress');
    await run.waitFor({ timeout: 20_000 });
    deploymentId = (await ada.api('GET', `/api/infrastructure?projectId=${projectId}`))
      .deployments[0].id as string;
    await expect
      .poll(() => run.locator('.infra-resources li').count(), { timeout: 120_000 })
      .toBeGreaterThan(0);
    await expect.poll(() => run.textContent()).toMatch(/Plan:\s*\d+ to add/);
    await shot(admin, 'progress');
    const percents: number[] = [];
    await expect
      .poll(
        async () => {
          // The status first, then the bar: once the status reads ready, the bar read after it
          // is what a person sees then (read the other way round, it could be a moment older).
          const status = await run.getAttribute('data-status');
          percents.push(Number(await run.getByRole('progressbar').getAttribute('aria-valuenow')));
          return status;
        },
        { timeout: 240_000, interval: 500 },
      )
      .toBe('ready');
    timings.provisionToReady = Date.now() - t0;
    expect(percents.at(-1)).toBe(100);
    // The bar moved through intermediate values, not only 0 → 100.
    expect(percents.some((p) => p > 0 && p < 100)).toBe(true);
    // The raw log is one click away and holds Terraform's own lines.
    await run.getByRole('button', { name: 'Raw log' }).click();
    await expect
      .poll(() => admin.getByLabel('Terraform log').textContent())
      .toMatch(/Apply complete!/);
    await run.getByRole('button', { name: 'Hide raw log' }).click();

    // Both machines listed with their addresses, agents online (live from agent_status).
    const rows = admin.locator('table[aria-label=Machines] tbody tr');
    await expect.poll(() => rows.count()).toBe(2);
    await bothAgentsOnline(rows);
    timings.provisionToOnline = Date.now() - t0;
    const machines = await rows.evaluateAll((r) =>
      r.map((x) => x.getAttribute('data-testid')!.replace('machine-', '')),
    );
    await expect
      .poll(() => rows.first().locator('code').textContent())
      .toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    await shot(admin, 'machines');

    // An editor sees the same deployment read-only: no action reachable.
    await openPanel(editor);
    await editor.getByText('read-only (editor)').waitFor();
    await expect
      .poll(() => editor.getByRole('button', { name: 'Destroy' }).isDisabled())
      .toBe(true);
    await expect
      .poll(() => editor.getByRole('button', { name: 'Re-apply' }).isDisabled())
      .toBe(true);
    await expect.poll(() => editor.locator('table[aria-label=Machines] tbody tr').count()).toBe(2);
    await editor.getByRole('tab', { name: 'Commands' }).click();
    await expect.poll(() => editor.getByLabel('Command').isDisabled()).toBe(true);
    await shot(editor, 'readonly');
    await editor.close();

    // A command on both machines: results side by side, exit 0, stdout "hi".
    await admin.getByRole('tab', { name: 'Commands' }).click();
    await admin.getByLabel('Command').fill('echo hi');
    const c0 = Date.now();
    await admin.getByRole('button', { name: 'Run', exact: true }).click();
    const results = admin.locator('.infra-results article');
    await expect.poll(() => results.count()).toBe(2);
    timings.commandRoundTrip = Date.now() - c0;
    for (const m of machines) {
      const card = admin.getByTestId(`result-${m}`);
      await expect.poll(() => card.getAttribute('data-status')).toBe('succeeded');
      await expect.poll(() => card.getByTestId('exit-code').textContent()).toBe('exit 0');
      await expect.poll(() => card.locator('pre').first().textContent()).toBe('hi\n');
    }
    // Side by side: the two cards share a row.
    const boxes = await results.evaluateAll((r) => r.map((x) => x.getBoundingClientRect().top));
    expect(boxes[0]).toBe(boxes[1]);
    await expect.poll(() => admin.locator('.infra-history li').count()).toBe(1);
    await shot(admin, 'command');
    // On one chosen machine, past its timeout: timed_out, no exit code, the other not asked.
    await admin.getByLabel('all machines').uncheck();
    await admin.getByLabel(machines[0]!, { exact: true }).uncheck();
    await admin.getByLabel('Command').fill('sleep 30');
    await admin.getByLabel('Timeout').selectOption('5');
    const s0 = Date.now();
    await admin.getByRole('button', { name: 'Run', exact: true }).click();
    await expect
      .poll(() => admin.getByTestId(`result-${machines[1]}`).getAttribute('data-status'), {
        timeout: 20_000,
      })
      .toBe('timed_out');
    timings.timedOutAfter = Date.now() - s0;
    expect(timings.timedOutAfter).toBeGreaterThan(4_500);
    await expect.poll(() => results.count()).toBe(1);
    await expect
      .poll(() => admin.getByTestId(`result-${machines[1]}`).getByTestId('exit-code').textContent())
      .toBe('exit —');
    await shot(admin, 'timed-out');

    // Deploy: live per-machine progress, then success and the app's URL on each machine.
    await admin.getByRole('tab', { name: 'Deploys' }).click();
    const d0 = Date.now();
    await admin.getByRole('button', { name: 'Deploy', exact: true }).click();
    for (const m of machines) {
      await expect
        .poll(() => admin.getByTestId(`deploy-${m}`).getAttribute('data-status'), {
          timeout: 120_000,
        })
        .toBe('succeeded');
    }
    timings.deploy = Date.now() - d0;
    await expect
      .poll(() => admin.getByTestId(`deploy-${machines[0]}`).textContent())
      .toMatch(/http:\/\/\d+\.\d+\.\d+\.\d+:\d+\//);
    await expect
      .poll(() => admin.locator('table[aria-label="Deploy history"] tbody tr').count())
      .toBe(1);
    await shot(admin, 'deploy');
    await admin.getByRole('tab', { name: 'Machines' }).click();
    await expect
      .poll(() => admin.getByTestId(`machine-${machines[1]}`).textContent())
      .toMatch(/http:\/\//);

    // A shell on the first machine, through its agent.
    await admin
      .getByTestId(`machine-${machines[0]}`)
      .getByRole('button', { name: 'Terminal' })
      .click();
    const term = admin.locator('.infra-xterm .terminal-view');
    await expect.poll(() => term.getAttribute('data-status')).toBe('open');
    await admin.locator('.infra-xterm .xterm-host').click();
    await admin.keyboard.type('echo "sum=$((20+22))" && hostname\n');
    await expect
      .poll(() => admin.locator('.infra-xterm .xterm-rows').textContent(), { timeout: 20_000 })
      .toContain('sum=42');
    await shot(admin, 'terminal');

    // A machine removed by hand: its agent goes offline at once (live), Refresh shows the
    // drift, Re-apply brings it back online.
    await admin.getByRole('tab', { name: 'Machines' }).click();
    const gone = execFileSync(
      'docker',
      [
        'ps',
        '-q',
        '--filter',
        `label=vaporform.deployment=${deploymentId}`,
        '--filter',
        `name=${machines[1]}`,
      ],
      { encoding: 'utf8' },
    ).trim();
    expect(gone).not.toBe('');
    execFileSync('docker', ['rm', '-fv', gone], { stdio: 'ignore' });
    await expect
      .poll(() => admin.getByTestId(`machine-${machines[1]}`).getAttribute('data-agent'))
      .toBe('offline');
    await admin.getByRole('button', { name: 'Refresh', exact: true }).click();
    await expect
      .poll(() => admin.locator('.infra-drift').textContent(), { timeout: 60_000 })
      .toMatch(/^Drift: 1 resource changed outside Terraform/);
    await shot(admin, 'drift');
    const r0 = Date.now();
    await admin.getByRole('button', { name: 'Re-apply' }).click();
    await expect.poll(() => run.textContent()).toMatch(/^Apply/);
    await expect
      .poll(() => run.getAttribute('data-status'), { timeout: 120_000, interval: 500 })
      .toBe('ready');
    await bothAgentsOnline(rows);
    timings.reapplyToOnline = Date.now() - r0;
    await expect.poll(() => admin.locator('.infra-drift').count()).toBe(0);

    // Destroy, after the confirmation: nothing left in Docker.
    await admin.getByRole('button', { name: 'Destroy', exact: true }).click();
    const dialog = admin.getByRole('dialog', { name: 'Destroy this deployment?' });
    await dialog.waitFor();
    await expect.poll(() => dialog.textContent()).toContain(machines[0]!);
    await shot(admin, 'destroy-confirm');
    const x0 = Date.now();
    await dialog.getByRole('button', { name: 'Destroy' }).click();
    await expect
      .poll(() => admin.locator('.infra-summary .infra-badge').textContent(), { timeout: 120_000 })
      .toBe('destroyed');
    timings.destroy = Date.now() - x0;
    expect(leftovers(deploymentId)).toEqual([]);
    await admin.getByRole('tab', { name: 'Run history' }).click();
    const history = admin.locator('table[aria-label="Run history"] tbody tr');
    // Newest first: destroy, re-apply, the drift check, the first apply.
    await expect
      .poll(() => history.evaluateAll((r) => r.map((x) => x.children[1]!.textContent)))
      .toEqual(['destroy', 'apply', 'refresh', 'apply']);
    // As the server recorded them: outcome, who, the plan of each apply and destroy.
    expect(
      await history.evaluateAll((r) =>
        r.map((x) => [2, 3, 4].map((i) => x.children[i]!.textContent)),
      ),
    ).toEqual([
      ['destroyed', 'Ada Admin', '0 to add, 0 to change, 2 to destroy'],
      ['ready', 'Ada Admin', '1 to add, 0 to change, 0 to destroy'],
      ['ready', 'Ada Admin', '—'],
      ['ready', 'Ada Admin', '2 to add, 0 to change, 0 to destroy'],
    ]);
    await shot(admin, 'history');
    expect(browserLog.errors).toEqual([]);
  }, 420_000);
});
