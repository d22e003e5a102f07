import { execFileSync, spawn } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { PassThrough } from 'node:stream';
import type Docker from 'dockerode';
import {
  buildRuntimeImage,
  DEFAULT_RUNTIME_IMAGE,
  dockerAnswers,
  dockerClient,
  followBuild,
  imageExists,
} from '../src/services/containers/index.ts';

/**
 * The test Docker engine: one `dockerd` per machine, with its own socket, data root and exec
 * root under this directory, started on first need and reused by every test file and run
 * (`.ci/run` starts it first and stops it at the end). The data root keeps the runtime image
 * between runs.
 */
export const TEST_DOCKER_DIR = process.env.VF_DOCKER_DIR ?? '/tmp/vf-docker';
const socket = `${TEST_DOCKER_DIR}/docker.sock`;
const lockDir = `${TEST_DOCKER_DIR}.lock`;

/** What a Docker test needs. */
export interface TestDocker {
  /** `unix://…` for the server's DOCKER_HOST. */
  dockerHost: string;
  docker: Docker;
  /** The local runtime image (built from this machine's node if missing). */
  image: string;
}

/**
 * A running Docker engine with the runtime image, or an error saying why not: a test that
 * needs Docker fails without one, it never skips. Uses `DOCKER_HOST` when set; otherwise
 * starts (and, as root, installs with apt) the test engine. Can take minutes the first time.
 */
export async function useTestDocker(): Promise<TestDocker> {
  const dockerHost = process.env.DOCKER_HOST || `unix://${socket}`;
  const docker = dockerClient(dockerHost);
  if (!(await dockerAnswers(docker))) {
    if (process.env.DOCKER_HOST) {
      throw new Error(`DOCKER_HOST=${process.env.DOCKER_HOST} does not answer`);
    }
    await withLock(() => startTestDockerd());
  }
  if (!(await dockerAnswers(docker, 10_000))) throw new Error(`no Docker engine at ${dockerHost}`);
  await withLock(async () => {
    await pruneStale(docker);
    await buildRuntimeImage(docker, { tag: DEFAULT_RUNTIME_IMAGE });
  });
  return { dockerHost, docker, image: DEFAULT_RUNTIME_IMAGE };
}

/** Installs docker.io when missing (root) and starts the test dockerd; waits until it answers. */
export async function startTestDockerd(
  options: {
    /** Another engine's directory (its own socket, data and exec roots, pidfile). */
    dir?: string;
    /** Its own address pool, so two engines' networks never overlap. */
    addressPool?: string;
    /** A second engine leaves iptables to the first (ports are served by docker-proxy). */
    iptables?: boolean;
    /**
     * Also listen on tcp://127.0.0.1:`port` with TLS only (`--tlsverify`), as the Kubernetes
     * engine does, with the certificates of `infra/k8s/engine-certs.sh` in `<dir>/server/`.
     */
    tls?: { port: number; certDir: string };
  } = {},
): Promise<string> {
  const dir = options.dir ?? TEST_DOCKER_DIR;
  const sock = `${dir}/docker.sock`;
  const dockerHost = `unix://${sock}`;
  const docker = dockerClient(dockerHost);
  if (await dockerAnswers(docker)) return dockerHost;
  const tls = options.tls;
  const tlsArgs = tls
    ? [
        `--host=tcp://127.0.0.1:${tls.port}`,
        '--tlsverify',
        `--tlscacert=${tls.certDir}/server/ca.pem`,
        `--tlscert=${tls.certDir}/server/cert.pem`,
        `--tlskey=${tls.certDir}/server/key.pem`,
      ]
    : [];
  const dockerd = findDockerd() ?? installDocker();
  mkdirSync(dir, { recursive: true });
  const pidfile = `${dir}/docker.pid`;
  rmSync(pidfile, { force: true });
  rmSync(sock, { force: true });
  const log = openSync(`${dir}/dockerd.log`, 'a');
  const child = spawn(
    dockerd,
    [
      `--host=${dockerHost}`,
      ...tlsArgs,
      `--data-root=${dir}/data`,
      `--exec-root=${dir}/exec`,
      `--pidfile=${pidfile}`,
      // No default bridge: every project container gets a network of its own, and the pool
      // leaves room for hundreds of them (/24 each).
      '--bridge=none',
      `--default-address-pool=base=${options.addressPool ?? '172.20.0.0/14'},size=24`,
      `--iptables=${options.iptables ?? true}`,
      '--log-level=warn',
    ],
    { detached: true, stdio: ['ignore', log, log] },
  );
  child.unref();
  closeSync(log);
  const deadline = Date.now() + 90_000;
  while (Date.now() < deadline) {
    if (await dockerAnswers(docker, 1_000)) return dockerHost;
    if (child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  const tail = readFileSync(`${dir}/dockerd.log`, 'utf8').slice(-3_000);
  throw new Error(`dockerd did not start (see ${dir}/dockerd.log):\n${tail}`);
}

/** Stops the test dockerd, or the one in `dir` (when its pidfile names a live process). */
export async function stopTestDockerd(dir = TEST_DOCKER_DIR): Promise<void> {
  const pidfile = `${dir}/docker.pid`;
  if (!existsSync(pidfile)) return;
  const pid = Number(readFileSync(pidfile, 'utf8').trim());
  if (!Number.isInteger(pid) || pid <= 0) return;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return; // not running
  }
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  process.kill(pid, 'SIGKILL');
}

function findDockerd(): string | undefined {
  return ['/usr/sbin/dockerd', '/usr/bin/dockerd', '/usr/local/bin/dockerd'].find((p) =>
    existsSync(p),
  );
}

/** `apt-get install docker.io` (root only), keeping apt from starting the system service. */
function installDocker(): string {
  if (process.getuid?.() !== 0) {
    throw new Error('dockerd is not installed and this is not root: install docker.io first');
  }
  const policy = '/usr/sbin/policy-rc.d';
  const ownPolicy = !existsSync(policy);
  if (ownPolicy) writeFileSync(policy, '#!/bin/sh\nexit 101\n', { mode: 0o755 });
  try {
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    execFileSync('apt-get', ['update', '-qq'], { env, stdio: 'ignore', timeout: 300_000 });
    execFileSync(
      'apt-get',
      ['install', '-y', '-qq', '--no-install-recommends', 'docker.io', 'bubblewrap'],
      { env, stdio: 'ignore', timeout: 600_000 },
    );
  } finally {
    if (ownPolicy) rmSync(policy, { force: true });
  }
  const dockerd = findDockerd();
  if (!dockerd) throw new Error('apt-get installed docker.io but dockerd is not there');
  return dockerd;
}

/** Runs `task` holding a machine-wide lock (test files run in parallel forks). */
async function withLock<T>(task: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + 15 * 60_000;
  for (;;) {
    try {
      mkdirSync(lockDir);
      writeFileSync(`${lockDir}/pid`, String(process.pid));
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      try {
        // A lock whose process is gone (a run killed mid-way), or older than 15 minutes,
        // belonged to a run that died. One taken a moment ago may not name its process yet.
        const age = Date.now() - statSync(lockDir).mtimeMs;
        if (age > 15 * 60_000 || (age > 5000 && !processAlive(lockHolder()))) {
          rmSync(lockDir, { force: true, recursive: true });
        }
      } catch {
        // released meanwhile
      }
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${lockDir}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  try {
    return await task();
  } finally {
    rmSync(lockDir, { force: true, recursive: true });
  }
}

/** The process that holds the lock, if it wrote its pid. */
function lockHolder(): number | undefined {
  try {
    const pid = Number(readFileSync(`${lockDir}/pid`, 'utf8'));
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function processAlive(pid: number | undefined): boolean {
  if (pid === undefined) return true; // unknown: only the age decides
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes what earlier test runs left behind: Vaporform containers whose workspace directory is
 * gone (their test app was closed without deleting them) and old Vaporform networks nobody uses.
 */
export async function pruneStale(docker: Docker): Promise<void> {
  const managed = { label: ['vaporform.managed'] };
  for (const c of await docker.listContainers({ all: true, filters: managed })) {
    const mount = c.Mounts.find((m) => m.Destination === '/app');
    if (mount?.Source && existsSync(mount.Source)) continue;
    await docker
      .getContainer(c.Id)
      .remove({ force: true })
      .catch(() => undefined);
  }
  for (const n of await docker.listNetworks({ filters: managed })) {
    const info = await docker
      .getNetwork(n.Id)
      .inspect()
      .catch(() => undefined);
    // Old ones only: a test running now may have made it a moment before its container.
    const old = info && Date.now() - new Date(info.Created).getTime() > 10 * 60_000;
    if (old && Object.keys(info.Containers ?? {}).length === 0) {
      await docker
        .getNetwork(n.Id)
        .remove()
        .catch(() => undefined);
    }
  }
}

/** Removes every container (with its volumes) and network carrying the label `label=value`. */
export async function removeLabelled(docker: Docker, label: string, value: string): Promise<void> {
  const filters = JSON.stringify({ label: [`${label}=${value}`] });
  for (const c of await docker.listContainers({ all: true, filters })) {
    await docker
      .getContainer(c.Id)
      .remove({ force: true, v: true })
      .catch(() => undefined);
  }
  for (const n of await docker.listNetworks({ filters })) {
    await docker
      .getNetwork(n.Id)
      .remove()
      .catch(() => undefined);
  }
}

/** Removes every container and network of one installation (`vaporform.installation`). */
export function removeInstallation(docker: Docker, installationId: string): Promise<void> {
  return removeLabelled(docker, 'vaporform.installation', installationId);
}

/** Removes the machines and network of one deployment (`vaporform.deployment`). */
export function removeDeployment(docker: Docker, deploymentId: string): Promise<void> {
  return removeLabelled(docker, 'vaporform.deployment', deploymentId);
}

/**
 * Runs a command in a container, bounded (the output is cut after `timeoutMs`, 30 s by
 * default); what it printed (stdout and stderr) and its exit code.
 */
export async function execIn(
  docker: Docker,
  container: string,
  cmd: string[],
  options: { user?: string; workingDir?: string; env?: string[]; timeoutMs?: number } = {},
): Promise<{ output: string; exitCode: number | null }> {
  const exec = await docker.getContainer(container).exec({
    Cmd: cmd,
    AttachStdout: true,
    AttachStderr: true,
    ...(options.user ? { User: options.user } : {}),
    ...(options.workingDir ? { WorkingDir: options.workingDir } : {}),
    ...(options.env ? { Env: options.env } : {}),
  });
  const stream = await exec.start({ hijack: true, stdin: false });
  let output = '';
  const sink = new PassThrough();
  sink.on('data', (c: Buffer) => (output += c.toString()));
  docker.modem.demuxStream(stream, sink, sink);
  await new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      stream.destroy();
      resolve();
    }, options.timeoutMs ?? 30_000);
    stream.on('end', () => {
      clearTimeout(timer);
      resolve();
    });
  });
  return { output, exitCode: (await exec.inspect()).ExitCode ?? null };
}

/** Copies `image` from one engine to another (docker save | docker load) unless it is there. */
export async function copyImage(from: Docker, to: Docker, image: string): Promise<void> {
  if (await imageExists(to, image)) return;
  const saved = (await from.getImage(image).get()) as NodeJS.ReadableStream;
  await followBuild(to, (await to.loadImage(saved)) as NodeJS.ReadableStream);
}
