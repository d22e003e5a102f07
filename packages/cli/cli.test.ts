// The `vaporform` command as a person runs it (`node packages/cli/bin/vaporform.js`, a child
// process per command), against the real server (apps/server/src/main.ts on a fresh data dir
// with its embedded PostgreSQL) and a fake Anthropic API on loopback.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeAnthropic, type FakeAnthropic } from '../../tests/e2e/fake-anthropic.ts';
import { repoRoot, startServer, type RunningServer } from '../../tests/e2e/server.ts';

const bin = path.join(repoRoot, 'packages/cli/bin/vaporform.js');
let server: RunningServer;
let fake: FakeAnthropic;
let home: string;
const email = `cli${Date.now()}@example.test`;
const password = 'correct horse battery staple';

/** Runs `vaporform ...args` with `stdin`; resolves to its exit code and output. */
function vaporform(
  args: string[],
  stdin = '',
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], {
      cwd: home,
      env: {
        ...process.env,
        XDG_CONFIG_HOME: path.join(home, 'config'),
        VAPORFORM_URL: server.url,
      },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(stdin);
  });
}

function credentialsFile(): string {
  return path.join(home, 'config', 'vaporform', 'credentials.json');
}

function savedCredentials(): any {
  return JSON.parse(readFileSync(credentialsFile(), 'utf8')).servers[new URL(server.url).origin];
}

async function api(method: string, url: string, body?: unknown): Promise<any> {
  const res = await fetch(`${server.url}${url}`, {
    method,
    headers: {
      authorization: `Bearer ${savedCredentials().token}`,
      ...(body ? { 'content-type': 'application/json' } : {}),
    },
    body: body ? JSON.stringify(body) : undefined,
  });
  return { status: res.status, body: await res.json() };
}

beforeAll(async () => {
  home = mkdtempSync(path.join(tmpdir(), 'vf-cli-'));
  fake = await startFakeAnthropic([
    {
      text: 'I will add a notes file.',
      tools: [{ name: 'write_file', input: { path: 'NOTES.md', content: '# Notes\n' } }],
    },
    { text: 'Created NOTES.md with a heading.' },
  ]);
  server = await startServer({
    env: {
      ANTHROPIC_API_KEY: 'sk-ant-fake-cli',
      ANTHROPIC_BASE_URL: fake.url,
      VAPORFORM_RUNTIME: 'process',
    },
  });
  const reg = await fetch(`${server.url}/api/auth/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email, password, name: 'Cli User' }),
  });
  expect(reg.status).toBe(201);
});

afterAll(async () => {
  await server?.stop();
  await fake?.close();
  if (home) rmSync(home, { recursive: true, force: true });
});

describe('vaporform', () => {
  it('refuses a wrong password with the contract’s message and a non-zero exit', async () => {
    const direct = await fetch(`${server.url}/api/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email, password: 'not the password' }),
    });
    const { error } = (await direct.json()) as { error: { message: string } };
    const run = await vaporform(['login', '--email', email], 'not the password\n');
    expect(run.code).toBe(1);
    expect(run.stderr).toBe(`vaporform: ${error.message}\n`);
    expect(existsSync(credentialsFile())).toBe(false);
  });

  it('without a session, says how to sign in', async () => {
    const run = await vaporform(['whoami']);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('run `vaporform login`');
  });

  it('signs in with the password on stdin and keeps the refresh token 0600', async () => {
    const run = await vaporform(['login', '--email', email], `${password}\n`);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(`as ${email}`);
    expect(statSync(credentialsFile()).mode & 0o777).toBe(0o600);
    expect(statSync(path.dirname(credentialsFile())).mode & 0o777).toBe(0o700);
    expect(savedCredentials().refreshToken).toEqual(expect.any(String));

    const who = await vaporform(['whoami', '--json']);
    expect(who.code).toBe(0);
    expect(JSON.parse(who.stdout)).toMatchObject({ email, name: 'Cli User' });
  });

  it('refreshes an expired access token by itself and saves the new pair', async () => {
    const before = savedCredentials();
    const creds = JSON.parse(readFileSync(credentialsFile(), 'utf8'));
    creds.servers[new URL(server.url).origin].expiresAt = Date.now() - 1000;
    writeFileSync(credentialsFile(), JSON.stringify(creds));
    const who = await vaporform(['whoami']);
    expect(who.code).toBe(0);
    expect(who.stdout).toContain(email);
    const after = savedCredentials();
    expect(after.refreshToken).not.toBe(before.refreshToken);
    expect(after.expiresAt).toBeGreaterThan(Date.now());
    expect(statSync(credentialsFile()).mode & 0o777).toBe(0o600);
  });

  it('creates a project from a template, pulls it, pushes a local edit the API then serves', async () => {
    const created = await vaporform([
      'projects',
      'create',
      'cli-demo',
      '--template',
      'node-http',
      '--json',
    ]);
    expect(created.code).toBe(0);
    const project = JSON.parse(created.stdout);
    expect(project).toMatchObject({ name: 'cli-demo', templateId: 'node-http' });

    const ls = await vaporform(['projects', 'ls', '--json']);
    expect(JSON.parse(ls.stdout).map((p: { id: string }) => p.id)).toContain(project.id);

    const dir = path.join(home, 'work');
    const pulled = await vaporform(['files', 'pull', 'cli-demo', dir, '--json']);
    expect(pulled.code).toBe(0);
    expect(JSON.parse(pulled.stdout).written).toContain('server.js');
    expect(readFileSync(path.join(dir, 'package.json'), 'utf8')).toContain('node-http-app');

    writeFileSync(path.join(dir, 'index.html'), '<h1>Edited from the command line</h1>\n');
    writeFileSync(path.join(dir, 'extra.txt'), 'new file\n');
    const pushed = await vaporform(['files', 'push', 'cli-demo', dir]);
    expect(pushed.stderr).toBe('');
    expect(pushed.code).toBe(0);
    expect(pushed.stdout).toContain('Pushed 2 file(s)');

    const file = await api('GET', `/api/projects/${project.id}/files/index.html`);
    expect(file.status).toBe(200);
    expect(file.body.content).toBe('<h1>Edited from the command line</h1>\n');
    expect((await api('GET', `/api/projects/${project.id}/files/extra.txt`)).body.content).toBe(
      'new file\n',
    );

    // Someone else changes the file: a push of a stale copy is a conflict, nothing overwritten.
    await api('PUT', `/api/projects/${project.id}/files/index.html`, { content: 'theirs\n' });
    writeFileSync(path.join(dir, 'index.html'), 'mine\n');
    const stale = await vaporform(['files', 'push', 'cli-demo', dir]);
    expect(stale.code).toBe(1);
    expect(stale.stderr).toContain('changed in the project since your last pull: index.html');
    expect((await api('GET', `/api/projects/${project.id}/files/index.html`)).body.content).toBe(
      'theirs\n',
    );

    const status = await vaporform(['status', project.id, '--json']);
    expect(status.code).toBe(0);
    expect(JSON.parse(status.stdout).project.id).toBe(project.id);

    const link = await vaporform(['open', 'cli-demo']);
    expect(link.code).toBe(0);
    expect(link.stdout).toMatch(new RegExp(`^http://${project.id}\\.preview\\.localhost:\\d+/`));
  });

  it('starts the project, shows its logs and status, stops it', async () => {
    const started = await vaporform(['start', 'cli-demo', '--json']);
    expect(started.stderr).toBe('');
    expect(started.code).toBe(0);
    expect(['starting', 'running']).toContain(JSON.parse(started.stdout).status);
    let logs = '';
    for (let i = 0; i < 60 && !logs.includes('listening on'); i++) {
      await new Promise((r) => setTimeout(r, 1000));
      logs = (await vaporform(['logs', 'cli-demo'])).stdout;
    }
    expect(logs).toContain('listening on http://localhost:');
    const status = await vaporform(['status', 'cli-demo']);
    expect(status.stdout).toMatch(/container: running/);
    const stopped = await vaporform(['stop', 'cli-demo']);
    expect(stopped.code).toBe(0);
    const after = JSON.parse((await vaporform(['status', 'cli-demo', '--json'])).stdout);
    expect(after.container?.status ?? 'stopped').toBe('stopped');
  });

  it('chats with the assistant: its answer and the changed files', async () => {
    const run = await vaporform(['chat', 'cli-demo', 'Add a notes file']);
    expect(run.stderr).toContain('write_file');
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('I will add a notes file.');
    expect(run.stdout).toContain('Created NOTES.md with a heading.');
    expect(run.stdout).toMatch(/Changed files \(changeset [0-9a-f-]+\):\n {2}A NOTES\.md/);
    const { projects } = (await api('GET', '/api/projects')).body;
    const id = projects.find((p: { name: string }) => p.name === 'cli-demo').id;
    expect((await api('GET', `/api/projects/${id}/files/NOTES.md`)).body.content).toBe('# Notes\n');

    const changesetId = /changeset ([0-9a-f-]+)/.exec(run.stdout)![1]!;
    const revert = await vaporform(['chat', 'cli-demo', '--revert', changesetId, '--json']);
    expect(revert.code).toBe(0);
    expect(JSON.parse(revert.stdout)).toEqual({ reverted: ['NOTES.md'] });
    expect((await api('GET', `/api/projects/${id}/files/NOTES.md`)).status).toBe(404);
  });

  it('creates a project from a description, waiting while the assistant generates it', async () => {
    const run = await vaporform([
      'projects',
      'create',
      'described',
      '--describe',
      'A tiny guestbook',
      '--json',
    ]);
    expect(run.stderr).toContain('generating described');
    const project = JSON.parse(run.stdout);
    expect(project.name).toBe('described');
    expect(project.status).not.toBe('creating');
    expect(JSON.stringify(fake.requests)).toContain('A tiny guestbook');
    expect((await vaporform(['projects', 'rm', 'described', '--yes'])).code).toBe(0);
  });

  it('sets and lists environment variables, never printing values', async () => {
    const set = await vaporform(['env', 'set', 'cli-demo', 'API_URL=https://x.test', 'MODE=dev']);
    expect(set.code).toBe(0);
    expect(set.stdout).not.toContain('https://x.test');
    const ls = await vaporform(['env', 'ls', 'cli-demo', '--json']);
    expect(JSON.parse(ls.stdout).names).toEqual(['API_URL', 'MODE']);
  });

  it('files push --watch sends each local change as it happens', async () => {
    const dir = path.join(home, 'watched');
    expect((await vaporform(['files', 'pull', 'cli-demo', dir])).code).toBe(0);
    const child = spawn(process.execPath, [bin, 'files', 'push', 'cli-demo', dir, '--watch'], {
      cwd: home,
      env: {
        ...process.env,
        XDG_CONFIG_HOME: path.join(home, 'config'),
        VAPORFORM_URL: server.url,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    try {
      for (let i = 0; i < 100 && !output.includes('watching'); i++) {
        await new Promise((r) => setTimeout(r, 200));
      }
      expect(output).toContain('watching');
      const { projects } = (await api('GET', '/api/projects')).body;
      const id = projects.find((p: { name: string }) => p.name === 'cli-demo').id;
      writeFileSync(path.join(dir, 'live.txt'), 'typed while watching\n');
      let file: any;
      for (let i = 0; i < 60; i++) {
        await new Promise((r) => setTimeout(r, 500));
        file = await api('GET', `/api/projects/${id}/files/live.txt`);
        if (file.status === 200) break;
      }
      expect(file.body.content).toBe('typed while watching\n');
      // The server can hold the file a moment before the CLI prints its report of the push.
      for (let i = 0; i < 40 && !output.includes('↑ live.txt'); i++) {
        await new Promise((r) => setTimeout(r, 250));
      }
      expect(output).toContain('↑ live.txt');
    } finally {
      child.kill('SIGTERM');
    }
  });

  it('an unknown project is the contract’s not-found message', async () => {
    const run = await vaporform(['status', '00000000-0000-4000-8000-000000000000']);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/^vaporform: .*not found/i);
  });

  it('deletes the project, then signs out (the session stops working)', async () => {
    const rm = await vaporform(['projects', 'rm', 'cli-demo', '--yes']);
    expect(rm.code).toBe(0);
    expect(JSON.parse((await vaporform(['projects', 'ls', '--json'])).stdout)).toEqual([]);
    const token = savedCredentials().token;
    const out = await vaporform(['logout']);
    expect(out.code).toBe(0);
    expect(savedCredentials()).toBeUndefined();
    const me = await fetch(`${server.url}/api/auth/me`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(me.status).toBe(401);
    expect((await vaporform(['whoami'])).code).toBe(1);
  });
});
