import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, createTestApp, registerAndLogin, type TestApp } from '../../../test/app.ts';
import { generateMasterKey, masterKeyFile } from './keyring.ts';

const serverDir = path.resolve(import.meta.dirname, '../../..');

/** Starts `npm run vaporform -- <args>` (the CLI itself) against a test app's database. */
function cli(t: TestApp, args: string[], env: Record<string, string> = {}) {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], {
    cwd: serverDir,
    env: {
      ...process.env,
      VAPORFORM_DATA_DIR: t.config.dataDir,
      DATABASE_URL: t.databaseUrl,
      LOG_LEVEL: 'warn',
      VAPORFORM_MASTER_KEY: '',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output = { stdout: '', stderr: '' };
  child.stdout!.on('data', (d: Buffer) => (output.stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output.stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, output, exited };
}

async function runToEnd(
  t: TestApp,
  args: string[],
  env?: Record<string, string>,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const run = cli(t, args, env);
  const timer = setTimeout(() => run.child.kill('SIGKILL'), 60_000);
  const code = await run.exited;
  clearTimeout(timer);
  return { code, ...run.output };
}

async function keyIdsInUse(client: pg.Client): Promise<Record<string, number>> {
  const { rows } = await client.query(`
    SELECT split_part(v, ':', 3) AS key_id, count(*)::int AS n FROM (
      SELECT value_encrypted AS v FROM project_env_vars
      UNION ALL SELECT api_key_encrypted FROM project_integrations WHERE api_key_encrypted IS NOT NULL
      UNION ALL SELECT webhook_secret_encrypted FROM project_integrations WHERE webhook_secret_encrypted IS NOT NULL
    ) s GROUP BY 1`);
  return Object.fromEntries(rows.map((r) => [r.key_id, r.n]));
}

async function keyRows(client: pg.Client): Promise<Record<string, string>> {
  const { rows } = await client.query('SELECT id, status FROM secret_keys');
  return Object.fromEntries(rows.map((r) => [r.id, r.status]));
}

function exit(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
  });
}

describe('rotate-master-key (key file)', () => {
  let t: TestApp;
  let client: pg.Client;
  let projectId: string;
  let expected: Record<string, string>;

  beforeAll(async () => {
    t = await createTestApp();
    client = new pg.Client({ connectionString: t.databaseUrl });
    await client.connect();
    const owner = await registerAndLogin(t.app);
    const created = await call(t.app, 'POST', '/api/projects', {
      token: owner.token,
      body: { name: 'Rotation' },
    });
    projectId = created.body.project.id;
    const vars = Object.fromEntries(
      Array.from({ length: 30 }, (_, i) => [`VAR_${i}`, `value ${i} ${'x'.repeat(i)}`]),
    );
    expect(
      (
        await call(t.app, 'PUT', `/api/projects/${projectId}/env`, {
          token: owner.token,
          body: { vars },
        })
      ).status,
    ).toBe(200);
    for (const service of ['stripe', 'openai', 'github']) {
      const res = await call(t.app, 'PUT', `/api/projects/${projectId}/integrations/${service}`, {
        token: owner.token,
        body: { apiKey: `key-for-${service}-0123456789`, webhookSecret: `hook-${service}` },
      });
      expect(res.status).toBe(200);
    }
    expected = await t.services.secrets.projectEnvironment(projectId);
    expect(Object.keys(expected)).toHaveLength(36);
  });

  afterAll(async () => {
    await client?.end();
    await t?.close();
  });

  it('killed midway leaves every value readable, and a second run resumes and retires the old key', async () => {
    const [oldKey] = Object.keys(await keyIdsInUse(client));
    expect(Object.keys(await keyIdsInUse(client))).toEqual([oldKey]);

    // Slow mode: 3 values per batch, 300 ms between batches; killed after a few batches.
    const run = cli(t, ['rotate-master-key', '--batch-size', '3', '--pause-ms', '300']);
    const deadline = Date.now() + 60_000;
    let reads = 0;
    while ((run.output.stdout.match(/^resealed/gm)?.length ?? 0) < 3) {
      if (Date.now() > deadline || run.child.exitCode !== null) {
        run.child.kill('SIGKILL');
        throw new Error(`no progress from the CLI:\n${run.output.stdout}\n${run.output.stderr}`);
      }
      // Readable throughout, by the running server, while values move to the new key.
      expect(await t.services.secrets.projectEnvironment(projectId)).toEqual(expected);
      reads++;
      await new Promise((r) => setTimeout(r, 50));
    }
    run.child.kill('SIGKILL');
    await exit(run.child);
    expect(reads).toBeGreaterThan(0);

    const midway = await keyIdsInUse(client);
    const newKey = Object.keys(midway).find((id) => id !== oldKey)!;
    expect(newKey).toBeDefined();
    expect(midway[oldKey!]).toBeGreaterThan(0); // interrupted: both keys in use
    expect(midway[newKey]).toBeGreaterThan(0);
    expect(await keyRows(client)).toEqual({ [oldKey!]: 'retiring', [newKey]: 'active' });
    const file = readFileSync(masterKeyFile(t.config.dataDir), 'utf8');
    expect(file).toContain(oldKey);
    expect(file).toContain(newKey);
    expect(await t.services.secrets.projectEnvironment(projectId)).toEqual(expected);

    // The server keeps working in between: new values take the new key.
    await t.services.secrets.setEnvironment(projectId, (await anyUserId(client))!, {
      ADDED_MIDWAY: 'added while interrupted',
    });
    expected = { ...expected, ADDED_MIDWAY: 'added while interrupted' };

    const resumed = await runToEnd(t, ['rotate-master-key', '--batch-size', '5']);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stdout).toMatch(new RegExp(`resumed the rotation to master key ${newKey}`));
    expect(resumed.stdout).toContain(`retired master key ${oldKey}`);
    expect(await keyIdsInUse(client)).toEqual({ [newKey]: 37 });
    expect(await keyRows(client)).toEqual({ [oldKey!]: 'retired', [newKey]: 'active' });
    // Retired key material leaves the key file.
    expect(readFileSync(masterKeyFile(t.config.dataDir), 'utf8')).not.toContain(oldKey);
    expect(await t.services.secrets.projectEnvironment(projectId)).toEqual(expected);

    // Running it again starts the next rotation and finishes it.
    const again = await runToEnd(t, ['rotate-master-key']);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain(`retired master key ${newKey}`);
    const status = await runToEnd(t, ['master-key-status']);
    expect(status.stdout).toMatch(/active\s+37 values\s+available/);
    expect(await t.services.secrets.projectEnvironment(projectId)).toEqual(expected);
  });

  it('does not retire a key a value still needs (one would not open)', async () => {
    await client.query(
      `UPDATE project_env_vars SET value_encrypted = regexp_replace(value_encrypted, ':[^:]+$', ':AAAA')
       WHERE project_id = $1 AND name = 'VAR_0'`,
      [projectId],
    );
    const before = Object.keys(await keyIdsInUse(client))[0]!;
    const run = await runToEnd(t, ['rotate-master-key']);
    expect(run.code).toBe(3);
    expect(run.stderr).toContain('1 values would not open');
    expect(run.stdout).toContain(`master key ${before} still seals 1 values: not retired`);
    expect((await keyRows(client))[before]).toBe('retiring');
    expect(readFileSync(masterKeyFile(t.config.dataDir), 'utf8')).toContain(before);
  });
});

describe('rotate-master-key (VAPORFORM_MASTER_KEY)', () => {
  it('needs a new key first in the list, then moves every value to it', async () => {
    const oldKey = generateMasterKey();
    const newKey = generateMasterKey();
    const b64 = (k: typeof oldKey) => k.key.toString('base64url');
    const t = await createTestApp({ VAPORFORM_MASTER_KEY: b64(oldKey) });
    try {
      const owner = await registerAndLogin(t.app);
      const created = await call(t.app, 'POST', '/api/projects', {
        token: owner.token,
        body: { name: 'Env keys' },
      });
      const id = created.body.project.id;
      await call(t.app, 'PUT', `/api/projects/${id}/env`, {
        token: owner.token,
        body: { vars: { ONE: '1', TWO: '2' } },
      });

      const refused = await runToEnd(t, ['rotate-master-key'], {
        VAPORFORM_MASTER_KEY: b64(oldKey),
      });
      expect(refused.code).toBe(1);
      expect(refused.stderr).toMatch(
        /first key \(mk[0-9a-f]+\) is already in use: put a new key first/,
      );

      const malformed = await runToEnd(t, ['rotate-master-key'], { VAPORFORM_MASTER_KEY: 'nope' });
      expect(malformed.code).toBe(2);
      expect(malformed.stderr).toMatch(/invalid configuration: VAPORFORM_MASTER_KEY/);

      const rotated = await runToEnd(t, ['rotate-master-key'], {
        VAPORFORM_MASTER_KEY: `${b64(newKey)},${b64(oldKey)}`,
      });
      expect(rotated.code, rotated.stderr).toBe(0);
      expect(rotated.stdout).toContain(`rotated to master key ${newKey.id}`);
      expect(rotated.stdout).toContain(`retired master key ${oldKey.id}`);
      expect(rotated.stdout).toContain('drop the retired keys from VAPORFORM_MASTER_KEY');

      const client = new pg.Client({ connectionString: t.databaseUrl });
      await client.connect();
      try {
        expect(await keyIdsInUse(client)).toEqual({ [newKey.id]: 2 });
      } finally {
        await client.end();
      }
      // A server restarted with only the new key reads everything.
      const { composeServices } = await import('../../compose.ts');
      const restarted = await composeServices({
        config: { ...t.config, masterKey: b64(newKey) },
        log: t.services.log,
        pool: t.services.pool,
        db: t.services.db,
      });
      try {
        expect(await restarted.secrets.projectEnvironment(id)).toEqual({ ONE: '1', TWO: '2' });
      } finally {
        await restarted.close();
      }
    } finally {
      await t.close();
    }
  });
});

async function anyUserId(client: pg.Client): Promise<string | undefined> {
  const { rows } = await client.query('SELECT id FROM users LIMIT 1');
  return rows[0]?.id;
}
