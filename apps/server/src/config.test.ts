import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, resolveDataDir } from './config.ts';

const dataDir = () => mkdtempSync(path.join(tmpdir(), 'vf-config-'));

describe('loadConfig', () => {
  it('has the documented defaults', () => {
    const c = loadConfig({ VAPORFORM_DATA_DIR: dataDir() });
    expect(c.port).toBe(4000);
    expect(c.host).toBe('127.0.0.1');
    expect(c.runtime).toBe('auto');
    expect(c.publicUrl).toBe('http://localhost:4000');
    expect(c.databaseUrl).toBeUndefined();
    expect(c.logLevel).toBe('info');
    expect(c.dockerTls).toBeUndefined();
    expect(c.containers.portsHost).toBeUndefined();
    expect(c.files.workspaceWatch).toBe('inotify');
  });

  it('reads a remote engine the way Docker does: TLS with certificates, ports at its address', () => {
    const c = loadConfig({
      VAPORFORM_DATA_DIR: dataDir(),
      DOCKER_HOST: 'tcp://vaporform-engine-0.vaporform-engine:2376',
      DOCKER_TLS_VERIFY: '1',
      DOCKER_CERT_PATH: '/etc/vaporform/engine',
      VAPORFORM_DOCKER_PORTS_HOST: 'vaporform-engine-0.vaporform-engine',
      VAPORFORM_WORKSPACE_WATCH: 'poll',
    });
    expect(c.dockerTls).toEqual({ certPath: '/etc/vaporform/engine' });
    expect(c.containers.portsHost).toBe('vaporform-engine-0.vaporform-engine');
    expect(c.files.workspaceWatch).toBe('poll');
  });

  it.each([
    ['PORT', 'eighty'],
    ['PORT', '70000'],
    ['DATABASE_URL', 'mysql://x'],
    ['REDIS_URL', 'not a url'],
    ['VAPORFORM_RUNTIME', 'vm'],
    ['LOG_LEVEL', 'loud'],
    ['JWT_SECRET', 'short'],
    ['VAPORFORM_PUBLIC_URL', 'ftp://x'],
    ['VAPORFORM_WORKSPACE_WATCH', 'fanotify'],
    ['VAPORFORM_DOCKER_PORTS_HOST', 'http://engine/'],
  ])('a bad %s stops start-up with a message naming it', (variable, value) => {
    const run = () => loadConfig({ VAPORFORM_DATA_DIR: dataDir(), [variable]: value });
    expect(run).toThrow(ConfigError);
    try {
      run();
    } catch (err) {
      expect((err as ConfigError).variable).toBe(variable);
      expect((err as Error).message.split('\n')).toHaveLength(1);
      expect((err as Error).message.startsWith(`${variable}:`)).toBe(true);
    }
  });

  it('puts the default data dir where npm was run (the repository root), not in apps/server', () => {
    const repo = dataDir();
    expect(resolveDataDir('./.vaporform', { INIT_CWD: repo })).toBe(path.join(repo, '.vaporform'));
    expect(resolveDataDir('/abs/data', { INIT_CWD: repo })).toBe('/abs/data');
    // A data dir an older version left in the working directory is kept while none is at the new place.
    const legacy = path.join(process.cwd(), `.vf-legacy-${path.basename(repo)}`);
    mkdirSync(legacy);
    try {
      expect(resolveDataDir(path.basename(legacy), { INIT_CWD: repo })).toBe(legacy);
    } finally {
      rmSync(legacy, { recursive: true });
    }
  });

  it('generates the JWT secret once into the data dir (0600) and reuses it', () => {
    const dir = dataDir();
    const first = loadConfig({ VAPORFORM_DATA_DIR: dir }).jwtSecret;
    const second = loadConfig({ VAPORFORM_DATA_DIR: dir }).jwtSecret;
    expect(first).toHaveLength(64);
    expect(second).toBe(first);
    const file = path.join(dir, 'keys', 'jwt-secret');
    expect(readFileSync(file, 'utf8').trim()).toBe(first);
    expect(statSync(file).mode & 0o777).toBe(0o600);
  });

  it('prefers JWT_SECRET when given', () => {
    const secret = 'x'.repeat(40);
    expect(loadConfig({ VAPORFORM_DATA_DIR: dataDir(), JWT_SECRET: secret }).jwtSecret).toBe(
      secret,
    );
  });
});
