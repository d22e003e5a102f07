import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import Docker from 'dockerode';
import type { Logger } from '../../common/logger.ts';
import { traceMethods } from '../../common/telemetry.ts';
import { DockerRuntime } from './docker-runtime.ts';
import { ProcessRuntime } from './process-runtime.ts';
import type { ContainerRuntime, RuntimeKind } from './runtime.ts';

/** How the engine is reached over TLS: Docker's DOCKER_TLS_VERIFY and DOCKER_CERT_PATH. */
export interface DockerTls {
  /** Holds `ca.pem` (the engine's CA), `cert.pem` and `key.pem` (this client's). */
  certPath: string;
}

/**
 * A dockerode client for `DOCKER_HOST` (unix://, tcp://, http(s)://) or the default socket. With
 * `tls` (DOCKER_TLS_VERIFY), a tcp:// engine is reached over TLS as Docker's CLI does: the
 * engine's certificate checked against `ca.pem`, ours presented.
 * @throws Error when a certificate file cannot be read.
 */
export function dockerClient(dockerHost: string | undefined, tls?: DockerTls): Docker {
  if (!dockerHost) return new Docker();
  if (dockerHost.startsWith('unix://')) return new Docker({ socketPath: dockerHost.slice(7) });
  const url = new URL(dockerHost.replace(/^tcp:/, tls ? 'https:' : 'http:'));
  const https = url.protocol === 'https:';
  const certs = tls && {
    ca: readCertificate(tls, 'ca.pem'),
    cert: readCertificate(tls, 'cert.pem'),
    key: readCertificate(tls, 'key.pem'),
  };
  return new Docker({
    protocol: https ? 'https' : 'http',
    host: url.hostname,
    port: Number(url.port || (https ? 2376 : 2375)),
    ...certs,
  });
}

function readCertificate(tls: DockerTls, name: string): Buffer {
  const file = path.join(tls.certPath, name);
  try {
    return readFileSync(file);
  } catch (err) {
    throw new Error(`DOCKER_TLS_VERIFY: cannot read ${file} (${(err as Error).message})`);
  }
}

/** True when a Docker engine answers within `timeoutMs`. */
export async function dockerAnswers(docker: Docker, timeoutMs = 2_000): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      docker.ping(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error('timeout')), timeoutMs);
      }),
    ]);
    return true;
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}

/** bubblewrap's path, when installed. */
export function findBwrap(): string | undefined {
  return ['/usr/bin/bwrap', '/usr/local/bin/bwrap', '/bin/bwrap'].find((p) => existsSync(p));
}

const dockerCalls = [
  'init',
  'start',
  'stop',
  'remove',
  'inspect',
  'list',
  'stats',
  'openTty',
] as const satisfies readonly (keyof ContainerRuntime)[];

export interface RuntimeChoice {
  runtime: ContainerRuntime;
  /** Why this one (logged at start-up). */
  reason: string;
}

/**
 * Picks the engine for VAPORFORM_RUNTIME: `auto` takes Docker when an engine answers, otherwise
 * the process sandbox. `kubernetes` is part of the interface but has no driver yet.
 * @throws Error when `docker` is asked for and no engine answers, or for `kubernetes`.
 */
export async function selectRuntime(options: {
  kind: RuntimeKind | 'auto';
  dockerHost: string | undefined;
  dockerTls?: DockerTls;
  log: Logger;
  docker: (docker: Docker) => DockerRuntime;
  /** Accounts on the installation (see ProcessRuntimeOptions.accounts). */
  accounts?: () => Promise<number>;
}): Promise<RuntimeChoice> {
  const { kind, log } = options;
  if (kind === 'kubernetes') {
    throw new Error(
      'VAPORFORM_RUNTIME=kubernetes: the Kubernetes driver is not available yet; use docker, process or auto',
    );
  }
  const processRuntime = (): RuntimeChoice => {
    const bwrap = findBwrap();
    return {
      runtime: new ProcessRuntime({
        log,
        bwrap,
        ...(options.accounts ? { accounts: options.accounts } : {}),
      }),
      reason: bwrap
        ? `process runtime, sandboxed with ${bwrap}`
        : 'process runtime (no bubblewrap: not sandboxed)',
    };
  };
  if (kind === 'process') return processRuntime();
  const docker = dockerClient(options.dockerHost, options.dockerTls);
  const where = options.dockerHost ?? process.env.DOCKER_HOST ?? 'the default socket';
  if (await dockerAnswers(docker)) {
    // Each call on the engine is a span (`docker start`, …) when traces are exported.
    const runtime = traceMethods(options.docker(docker), 'docker', dockerCalls);
    return { runtime, reason: `docker runtime (engine at ${where})` };
  }
  if (kind === 'docker') {
    throw new Error(`VAPORFORM_RUNTIME=docker: no Docker engine answers at ${where}`);
  }
  const choice = processRuntime();
  return { ...choice, reason: `${choice.reason}; no Docker engine answers at ${where}` };
}
