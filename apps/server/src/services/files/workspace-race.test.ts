// The symlink-race escape (issue 11, critical): a project's code swaps a directory of its
// workspace for a link to a host directory thousands of times a second while the server writes,
// reads, imports, moves, deletes and exports there. Nothing may land outside the workspace and
// nothing outside may be read. Runs a real container on the test Docker engine.
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type Docker from 'dockerode';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, createTestApp, registerAndLogin, type TestApp } from '../../../test/app.ts';
import { removeInstallation, useTestDocker } from '../../../test/docker.ts';
import { createProject, eventually, type Session } from '../../../test/docker-projects.ts';
import { ContainersStore } from '../containers/index.ts';

const RACE_SECONDS = Number(process.env.VF_RACE_SECONDS ?? 20);
const canary = `host-secret-${randomBytes(8).toString('hex')}`;

let t: TestApp;
let docker: Docker;
let installationId: string;
let alice: Session;
let hostDir: string;

beforeAll(async () => {
  let dockerHost: string;
  ({ docker, dockerHost } = await useTestDocker());
  t = await createTestApp({
    VAPORFORM_RUNTIME: 'docker',
    DOCKER_HOST: dockerHost,
    VAPORFORM_RECONCILE_SECONDS: '0',
    VAPORFORM_STATS_SECONDS: '0',
  });
  installationId = await new ContainersStore(t.services.db).installationId();
  alice = await registerAndLogin(t.app);
  // The host directory the project aims at: it holds "secrets" the server must never read, and
  // nothing may be written into it.
  hostDir = mkdtempSync('/tmp/vf-race-target-');
  chmodSync(hostDir, 0o755);
  for (let i = 0; i < 50; i++) writeFileSync(path.join(hostDir, `leak-${i}.txt`), canary);
  writeFileSync(path.join(hostDir, `q0.txt`), canary);
}, 900_000);

afterAll(async () => {
  await t?.close();
  if (docker && installationId) await removeInstallation(docker, installationId);
  if (hostDir) rmSync(hostDir, { recursive: true, force: true });
}, 120_000);

/** Starts `script` (Node.js) detached in the container as its user; resolves once it runs. */
/** Starts `script` under node in the container, detached; returns how to ask about it later. */
async function runInContainer(containerId: string, script: string): Promise<() => Promise<string>> {
  const exec = await docker.getContainer(containerId).exec({
    Cmd: ['node', '-e', script],
    WorkingDir: '/app',
    AttachStdout: false,
    AttachStderr: false,
  });
  await exec.start({ Detach: true });
  return async () => {
    const state = await exec.inspect();
    return `running: ${state.Running}, exit code: ${state.ExitCode}`;
  };
}

/**
 * The attacker: `race.real` ⇄ `race` ⇄ `race.link → hostDir` as fast as it can, with files in
 * the real directory (so the watcher imports `race/leak-N.txt` and `race/imp-N.txt`), a nested
 * variant one level down, and a FIFO and a link at names the server reads.
 */
function attacker(target: string, seconds: number): string {
  return `
const fs = require('fs');
const { execFileSync } = require('child_process');
const T = ${JSON.stringify(target)};
process.chdir('/app');
fs.mkdirSync('race', { recursive: true });
fs.mkdirSync('deep/race', { recursive: true });
for (let i = 0; i < 50; i++) fs.writeFileSync('race/leak-' + i + '.txt', 'benign');
try { fs.symlinkSync(T, 'race.link'); } catch {}
try { fs.symlinkSync(T, 'deep/race.link'); } catch {}
try { fs.symlinkSync(T + '/leak-1.txt', 'linked.txt'); } catch {}
try { execFileSync('mkfifo', ['fifo.txt']); } catch {}
const end = Date.now() + ${seconds * 1000};
let n = 0;
function swap(dir) {
  try { fs.renameSync(dir, dir + '.real'); } catch {}
  try { fs.renameSync(dir + '.link', dir); } catch {}
  try { fs.renameSync(dir, dir + '.link'); } catch {}
  try { fs.renameSync(dir + '.real', dir); } catch {}
}
while (Date.now() < end) {
  swap('race');
  swap('deep/race');
  if (++n % 500 === 0) {
    try { fs.writeFileSync('race/imp-' + (n % 20) + '.txt', 'imported ' + n); } catch {}
    try { fs.writeFileSync('race/leak-' + (n % 50) + '.txt', 'benign ' + n); } catch {}
  }
}
fs.writeFileSync('attacker-done', String(n));
`;
}

describe('workspace I/O while the project swaps directories for links', () => {
  it('writes, reads, imports, moves and exports never leave the workspace', async () => {
    const projectId = await createProject(t, alice, 'race');
    const started = await call(t.app, 'POST', `/api/containers/${projectId}/start?wait=true`, {
      token: alice.token,
    });
    expect(started.status, JSON.stringify(started.body)).toBe(200);
    const attackerState = await runInContainer(`vf-${projectId}`, attacker(hostDir, RACE_SECONDS));

    const base = `/api/projects/${projectId}`;
    const deadline = Date.now() + RACE_SECONDS * 1000;
    const counts = { writes: 0, reads: 0, moves: 0, deletes: 0, exports: 0 };
    const exported: string[] = [];
    const statuses: Record<number, number> = {};
    const writer = async (lane: number) => {
      for (let i = 0; Date.now() < deadline; i++) {
        const dir = i % 2 ? 'race' : 'deep/race';
        const file = `${dir}/q${lane}-${i % 40}.txt`;
        const put = await call(t.app, 'PUT', `${base}/files/${file}`, {
          token: alice.token,
          body: { content: `written ${lane}/${i}` },
        });
        statuses[put.status] = (statuses[put.status] ?? 0) + 1;
        counts.writes++;
        if (i % 5 === 0) {
          await call(t.app, 'POST', `${base}/move`, {
            token: alice.token,
            body: { from: file, to: `${dir}/moved-${lane}-${i % 40}.txt` },
          });
          counts.moves++;
        }
        if (i % 7 === 0) {
          await call(t.app, 'DELETE', `${base}/files/${dir}/moved-${lane}-${(i + 35) % 40}.txt`, {
            token: alice.token,
          });
          counts.deletes++;
        }
      }
    };
    const reader = async () => {
      for (let i = 0; Date.now() < deadline; i++) {
        const res = await call(t.app, 'GET', `${base}/files/race/leak-${i % 50}.txt`, {
          token: alice.token,
        });
        if (res.status === 200) expect(JSON.stringify(res.body)).not.toContain(canary);
        counts.reads++;
        if (i % 25 === 0) {
          const zip = await t.app.request(`${base}/archive`, {
            headers: { authorization: `Bearer ${alice.token}` },
          });
          exported.push(Buffer.from(await zip.arrayBuffer()).toString('latin1'));
          counts.exports++;
        }
      }
    };
    await Promise.all([writer(0), writer(1), writer(2), reader()]);
    // The resync path (start-up) reads and writes every file too.
    await t.services.files.resync(projectId);
    const workspace = t.services.files.workspacePath(projectId);
    // Generous: on a loaded CI machine the attacker (a node process in the container) can start
    // seconds late; if it never finishes, the message says whether it died and how.
    try {
      await eventually(
        async () => {
          try {
            return statSync(path.join(workspace, 'attacker-done')).isFile();
          } catch {
            return false;
          }
        },
        90_000,
        'the attacker to finish',
      );
    } catch (err) {
      throw new Error(`${(err as Error).message} (attacker ${await attackerState()})`);
    }
    await t.services.files.resync(projectId);

    // Nothing landed outside: the host directory holds exactly what it held.
    const outside = readdirSync(hostDir).sort();
    expect(outside).toEqual(
      [...Array.from({ length: 50 }, (_, i) => `leak-${i}.txt`), 'q0.txt'].sort(),
    );
    for (const name of outside) expect(statSync(path.join(hostDir, name)).uid).toBe(0);
    // Nothing from outside was read: no stored file and no archive holds the canary.
    const stored = await sql<{ n: string }>`
      SELECT count(*) AS n FROM file_versions
      WHERE project_id = ${projectId} AND content LIKE '%' || ${canary} || '%'`.execute(
      t.services.db,
    );
    expect(Number(stored.rows[0]!.n)).toBe(0);
    for (const zip of exported) expect(zip).not.toContain(canary);
    console.log('race:', JSON.stringify({ counts, statuses }));
    // The attack ran against real traffic (the figures depend on the machine's load).
    expect(counts.writes).toBeGreaterThan(20);
    expect((statuses[200] ?? 0) + (statuses[201] ?? 0)).toBeGreaterThan(10);
    expect(counts.exports).toBeGreaterThan(0);
  }, 180_000);

  it('files the server writes belong to the container user, who can change them', async () => {
    const projectId = await createProject(t, alice, 'owner');
    const put = await call(t.app, 'PUT', `/api/projects/${projectId}/files/src/new/app.txt`, {
      token: alice.token,
      body: { content: 'from the api' },
    });
    expect(put.status, JSON.stringify(put.body)).toBe(201);
    const workspace = t.services.files.workspacePath(projectId);
    if (process.getuid?.() === 0) {
      for (const p of ['', 'src', 'src/new', 'src/new/app.txt', 'package.json']) {
        const stat = statSync(path.join(workspace, p));
        expect({ p, uid: stat.uid, gid: stat.gid }).toEqual({ p, uid: 1000, gid: 1000 });
      }
    }
    const started = await call(t.app, 'POST', `/api/containers/${projectId}/start?wait=true`, {
      token: alice.token,
    });
    expect(started.status, JSON.stringify(started.body)).toBe(200);
    const exec = await docker.getContainer(`vf-${projectId}`).exec({
      Cmd: [
        'sh',
        '-c',
        'echo more >> src/new/app.txt && touch src/new/other.txt && mkdir src/new/sub && cat src/new/app.txt',
      ],
      WorkingDir: '/app',
      AttachStdout: true,
      AttachStderr: true,
    });
    const stream = await exec.start({ hijack: true, stdin: false });
    let output = '';
    stream.on('data', (c: Buffer) => (output += c.toString('latin1')));
    await new Promise((r) => stream.on('end', r));
    expect((await exec.inspect()).ExitCode, output).toBe(0);
    expect(output).toContain('from the apimore');
  }, 180_000);
});
