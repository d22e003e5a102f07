import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../config.ts';
import { call, createTestApp, registerAndLogin, type TestApp } from '../../../test/app.ts';
import { openValue, parseSealedValue, sealValue, SealedValueError } from './envelope.ts';
import { deriveKeyId, generateMasterKey, masterKeyFile, parseMasterKeyList } from './keyring.ts';

let t: TestApp;
let owner: Awaited<ReturnType<typeof registerAndLogin>>;
let client: pg.Client;
let projectCount = 0;

beforeAll(async () => {
  t = await createTestApp();
  owner = await registerAndLogin(t.app);
  client = new pg.Client({ connectionString: t.databaseUrl });
  await client.connect();
});

afterAll(async () => {
  await client?.end();
  await t?.close();
});

async function newProject(): Promise<string> {
  const res = await call(t.app, 'POST', '/api/projects', {
    token: owner.token,
    body: { name: `Sealing ${++projectCount}` },
  });
  expect(res.status).toBe(201);
  return res.body.project.id;
}

async function setEnv(projectId: string, vars: Record<string, string | null>) {
  const res = await call(t.app, 'PUT', `/api/projects/${projectId}/env`, {
    token: owner.token,
    body: { vars },
  });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body.names as string[];
}

async function storedValue(projectId: string, name: string): Promise<string> {
  const { rows } = await client.query(
    'SELECT value_encrypted FROM project_env_vars WHERE project_id = $1 AND name = $2',
    [projectId, name],
  );
  return rows[0].value_encrypted;
}

async function overwrite(projectId: string, name: string, sealed: string): Promise<void> {
  await client.query(
    'UPDATE project_env_vars SET value_encrypted = $3 WHERE project_id = $1 AND name = $2',
    [projectId, name, sealed],
  );
}

/** Flips one bit of the decoded part `index` (3 nonce, 4 tag, 5 ciphertext) of a sealed value. */
function flipBit(sealed: string, index: number, bit = 0): string {
  const parts = sealed.split(':');
  const bytes = Buffer.from(parts[index]!, 'base64url');
  bytes[0] = bytes[0]! ^ (1 << bit);
  parts[index] = bytes.toString('base64url');
  return parts.join(':');
}

describe('sealed values in PostgreSQL', () => {
  it('round-trips through the database: stored sealed, given back to the runtime', async () => {
    const projectId = await newProject();
    const value = 'postgres://app:pä$$wörd@db.internal:5432/app?sslmode=require ✓';
    await setEnv(projectId, { DATABASE_URL: value, EMPTY: '' });
    const stored = await storedValue(projectId, 'DATABASE_URL');
    expect(stored).not.toContain('pä$$wörd');
    const parts = parseSealedValue(stored);
    expect(stored.startsWith('vf1:aes-256-gcm:')).toBe(true);
    expect(parts.nonce).toHaveLength(12);
    expect(parts.tag).toHaveLength(16);
    const env = await t.services.secrets.projectEnvironment(projectId);
    expect(env).toEqual({ DATABASE_URL: value, EMPTY: '' });
  });

  it('seals the same plaintext twice into different values (fresh nonce each time)', async () => {
    const projectId = await newProject();
    await setEnv(projectId, { A: 'same value', B: 'same value' });
    const first = await storedValue(projectId, 'A');
    await setEnv(projectId, { A: 'same value' });
    const second = await storedValue(projectId, 'A');
    const other = await storedValue(projectId, 'B');
    expect(new Set([first, second, other]).size).toBe(3);
    expect(new Set([first, second, other].map((s) => s.split(':')[3])).size).toBe(3);
  });

  it('fails closed when any single bit of the nonce, tag or ciphertext is flipped', async () => {
    const projectId = await newProject();
    await setEnv(projectId, { TOKEN: 'a value worth protecting' });
    const good = await storedValue(projectId, 'TOKEN');
    for (const [index, bit] of [
      [3, 0],
      [4, 7],
      [5, 3],
    ] as const) {
      await overwrite(projectId, 'TOKEN', flipBit(good, index, bit));
      const err = await t.services.secrets.projectEnvironment(projectId).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(SealedValueError);
      expect((err as SealedValueError).problem).toBe('tampered');
      expect((err as Error).message).not.toContain('worth protecting');
    }
    await overwrite(projectId, 'TOKEN', good);
    expect(await t.services.secrets.projectEnvironment(projectId)).toEqual({
      TOKEN: 'a value worth protecting',
    });
  });

  it('refuses a value copied from another row (another name, or another project)', async () => {
    const a = await newProject();
    const b = await newProject();
    await setEnv(a, { SECRET: 'belongs to A', OTHER: 'x' });
    await setEnv(b, { SECRET: 'belongs to B' });
    const fromA = await storedValue(a, 'SECRET');

    await overwrite(a, 'OTHER', fromA); // same project, another variable
    await expect(t.services.secrets.projectEnvironment(a)).rejects.toMatchObject({
      problem: 'tampered',
    });
    await overwrite(b, 'SECRET', fromA); // same name, another project
    await expect(t.services.secrets.projectEnvironment(b)).rejects.toMatchObject({
      problem: 'tampered',
    });
  });

  it('refuses an integration key moved into the webhook secret column of the same row', async () => {
    const projectId = await newProject();
    const put = await call(t.app, 'PUT', `/api/projects/${projectId}/integrations/stripe`, {
      token: owner.token,
      body: { apiKey: 'sk_test_0123456789abcdef', webhookSecret: 'whsec_0123456789' },
    });
    expect(put.status).toBe(200);
    await client.query(
      `UPDATE project_integrations SET webhook_secret_encrypted = api_key_encrypted
       WHERE project_id = $1`,
      [projectId],
    );
    await expect(t.services.secrets.projectEnvironment(projectId)).rejects.toMatchObject({
      problem: 'tampered',
    });
    const tested = await call(
      t.app,
      'POST',
      `/api/projects/${projectId}/integrations/stripe/test`,
      {
        token: owner.token,
      },
    );
    expect(tested.status).toBe(200);
    expect(tested.body.test.result).toBe('untested'); // the API key itself still opens
  });

  it('names the problem for malformed values and unknown keys, never returning garbage', async () => {
    const projectId = await newProject();
    await setEnv(projectId, { V: 'value' });
    const good = await storedValue(projectId, 'V');
    const cases: [string, string][] = [
      ['not sealed at all', 'malformed'],
      [good.replace(/^vf1:/, 'vf9:'), 'unsupported'],
      [good.replace('aes-256-gcm', 'aes-128-cbc'), 'unsupported'],
      [good.split(':').slice(0, 5).join(':'), 'malformed'],
      [good.replace(/:[^:]+:([^:]+:[^:]+)$/, ':AAAA:$1'), 'malformed'], // 3-byte nonce
      [good.replace(/^(vf1:aes-256-gcm:)[^:]+/, '$1mk000000000000'), 'unknown_key'],
    ];
    for (const [sealed, problem] of cases) {
      await overwrite(projectId, 'V', sealed);
      await expect(t.services.secrets.projectEnvironment(projectId)).rejects.toMatchObject({
        name: 'SealedValueError',
        problem,
      });
    }
    const failures = await t.services.metrics.registry.getSingleMetricAsString(
      'vaporform_secrets_open_failures_total',
    );
    expect(failures).toMatch(/problem="tampered"/);
  });
});

describe('envelope', () => {
  const master = generateMasterKey();
  const lookup = (id: string) => (id === master.id ? master : undefined);

  it('binds the key id: a value relabelled with another key id does not open', () => {
    const other = generateMasterKey();
    const sealed = sealValue(master, 'hello', 'ctx:1');
    const relabelled = sealed.replace(master.id, other.id);
    expect(() =>
      openValue((id) => (id === other.id ? other : undefined), relabelled, 'ctx:1'),
    ).toThrow(SealedValueError);
    expect(openValue(lookup, sealed, 'ctx:1')).toBe('hello');
  });

  it('flipping any bit anywhere in the value is detected (exhaustive over a short value)', () => {
    const sealed = sealValue(master, 'hi', 'ctx:2');
    const parts = sealed.split(':');
    let detected = 0;
    let total = 0;
    for (const index of [3, 4, 5]) {
      const bytes = Buffer.from(parts[index]!, 'base64url');
      for (let byte = 0; byte < bytes.length; byte++) {
        for (let bit = 0; bit < 8; bit++) {
          const copy = Buffer.from(bytes);
          copy[byte] = copy[byte]! ^ (1 << bit);
          const changed = [...parts];
          changed[index] = copy.toString('base64url');
          total++;
          try {
            openValue(lookup, changed.join(':'), 'ctx:2');
          } catch (err) {
            if (err instanceof SealedValueError) detected++;
          }
        }
      }
    }
    expect(total).toBe((12 + 16 + 2) * 8);
    expect(detected).toBe(total);
  });
});

describe('master keys', () => {
  it('generates the key file once, mode 0600, in a 0700 directory', () => {
    const file = masterKeyFile(t.config.dataDir);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(`${t.config.dataDir}/keys`).mode & 0o777).toBe(0o700);
    const line = readFileSync(file, 'utf8')
      .split('\n')
      .find((l) => l.startsWith('mk'))!;
    const [id, key] = line.split(' ');
    expect(deriveKeyId(Buffer.from(key!, 'base64url'))).toBe(id);
  });

  it('parses VAPORFORM_MASTER_KEY lists (hex or base64, newest first) and names a bad entry', () => {
    const hex = 'ab'.repeat(32);
    const b64 = Buffer.alloc(32, 7).toString('base64');
    const keys = parseMasterKeyList(`${hex}, ${b64}`);
    expect(keys.map((k) => k.key.length)).toEqual([32, 32]);
    expect(() => parseMasterKeyList(`${hex},short`)).toThrow(/entry 2/);
    expect(() => loadConfig({ VAPORFORM_MASTER_KEY: 'too-short' })).toThrow(/VAPORFORM_MASTER_KEY/);
    expect(
      loadConfig({ VAPORFORM_MASTER_KEY: `${hex},${b64}`, VAPORFORM_DATA_DIR: t.config.dataDir })
        .masterKey,
    ).toBe(`${hex},${b64}`);
  });

  it('uses the key from VAPORFORM_MASTER_KEY and refuses to start without the active key', async () => {
    const key = generateMasterKey();
    const withEnv = await createTestApp({ VAPORFORM_MASTER_KEY: key.key.toString('base64url') });
    try {
      const keys = await withEnv.services.secrets.keyStatus();
      expect(keys).toEqual([
        expect.objectContaining({ id: key.id, status: 'active', available: true }),
      ]);
    } finally {
      await withEnv.close();
    }
    // The same database, but this server's data dir holds another key: it must not start.
    const { composeServices } = await import('../../compose.ts');
    const { createDb } = await import('../../db/index.ts');
    const { pool, db } = createDb(t.databaseUrl, 2);
    const otherDir = mkdtempSync(path.join(tmpdir(), 'vf-other-keys-'));
    try {
      await expect(
        composeServices({
          config: { ...t.config, dataDir: otherDir },
          log: t.services.log,
          pool,
          db,
        }),
      ).rejects.toThrow(/sealed with master key mk[0-9a-f]+, which this server does not have/);
    } finally {
      await db.destroy();
      rmSync(otherDir, { recursive: true, force: true });
    }
  });
});
