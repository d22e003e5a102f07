import { spawn } from 'node:child_process';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { chmodSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import http, { STATUS_CODES, type IncomingMessage } from 'node:http';
import path from 'node:path';
import type { Duplex } from 'node:stream';
import { fileURLToPath } from 'node:url';
import {
  parseAgentMessage,
  socketCloseCodes,
  terminalControlFrame,
  type AgentMessage,
  type TerminalControlFrame,
  type ProjectEventData,
  type ServerMessage,
} from '@vaporform/sdk';
import { WebSocketServer, type WebSocket } from 'ws';
import { AppError, errors } from '../../common/errors.ts';
import type { Logger } from '../../common/logger.ts';
import type { ActivityService } from '../activity/index.ts';
import type { FilesService } from '../files/index.ts';
import type { AuthService } from '../auth/index.ts';
import type { Deployment, InfrastructureService, MachineApp } from '../infrastructure/index.ts';
import { roleAtLeast, type ProjectsService } from '../projects/index.ts';
import { InProcessBus, type EventBus } from '../../common/bus.ts';
import { publishProjectEvent } from '../../common/project-events.ts';
import type { TemplatesService } from '../templates/index.ts';
import { AgentStore, type CommandRow, type DeployRow, type DeployStatus } from './store.ts';
import { tarGz } from './tar.ts';

/** The repository's agent app: its sources and the bundle built from them. */
export const AGENT_APP_DIR = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '../../../../agent',
);
/** The agent protocol's source (the bundle embeds it). */
const AGENT_PROTOCOL_SOURCE = path.resolve(
  AGENT_APP_DIR,
  '../../packages/sdk/src/agent-protocol.ts',
);
/** The agent socket's path, on the server and on the local gateway. */
export const AGENT_PATH = '/api/agent';
/** Where local machines find the gateway socket (the provider mounts its folder there). */
export const MACHINE_GATEWAY_DIR = '/run/vaporform';
const GATEWAY_SOCKET = 'agent.sock';

/** A command's outcome on one machine (API.md › Infrastructure). */
export type CommandStatus =
  'succeeded' | 'failed' | 'timed_out' | 'agent_lost' | 'canceled' | 'skipped';

/** One machine's answer to a command. */
export interface CommandResult {
  machine: string;
  status: CommandStatus;
  exitCode: number | null;
  stdout: string;
  stderr: string;
  truncated: boolean;
  durationMs: number;
  /** Why it did not run or did not finish (refused, offline, lost…). */
  error?: string;
}

/** What `POST /api/infrastructure/:id/command` asks for. */
export interface CommandInput {
  command: string;
  args?: string[];
  timeoutMs?: number;
  machines?: string[];
  maxConcurrency?: number;
  /** Errors allowed before the command is sent to no more machines (the rest `skipped`). */
  maxErrors?: number;
  maxOutputBytes?: number;
}

/** One machine's outcome of a deploy. */
export interface DeployResult {
  machine: string;
  status: 'succeeded' | 'failed' | 'rolled_back' | 'agent_lost';
  /** Where the app answers on that machine (when it does). */
  url: string | null;
  error?: string;
  durationMs: number;
}

/** What a deploy publishes as `deploy_progress` (its ids added). */
type DeployProgress = DistributiveOmit<
  ProjectEventData<'deploy_progress'>,
  'deploymentId' | 'deployId'
>;
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** A deploy as the API shows it. */
export interface DeployView {
  id: string;
  deploymentId: string;
  release: string;
  sha256: string | null;
  status: DeployStatus;
  results: DeployResult[];
  createdAt: string;
  finishedAt: string | null;
}

/** A live event of a running command (the streaming variant). */
export type CommandEvent =
  | { type: 'command'; data: { id: string; machines: string[] } }
  | { type: 'started'; data: { machine: string } }
  | { type: 'output'; data: { machine: string; stream: 'stdout' | 'stderr'; data: string } }
  | { type: 'result'; data: CommandResult };

export interface AgentServiceDeps {
  db: import('../../db/index.ts').Db;
  infrastructure: InfrastructureService;
  projects: ProjectsService;
  /** Session revocations close machine terminals (optional: tests without sessions). */
  auth?: Pick<AuthService, 'onSessionsRevoked'>;
  activity: ActivityService;
  /** The project's files (what a deploy ships) and its template's run configuration. */
  files: FilesService;
  templates: TemplatesService;
  bus: EventBus;
  log: Logger;
  dataDir: string;
  /** The agent socket URL machines dial, for cloud bootstraps (`wss://…/api/agent`). */
  publicUrl: string;
  /** How often the server pings each agent (ms). */
  heartbeatMs?: number;
  /** Silence after which an agent is offline and its socket closed (ms). */
  offlineAfterMs?: number;
  /** Lifetime of an enrollment token (ms). */
  enrollmentTtlMs?: number;
  /** Between a command's timeout and the server giving up on the agent's answer (ms). */
  graceMs?: number;
}

interface Connection {
  ws: WebSocket;
  key: string;
  deploymentId: string;
  machine: string;
  lastSeen: number;
}

/**
 * What instances tell each other about agents over the bus: `agent:relay` (every instance)
 * carries probes and messages for a machine to whichever instance holds its socket;
 * `agent:instance:<id>` carries the answers back to the instance that asked.
 */
type RelayMessage =
  | { kind: 'probe'; key: string; from: string; nonce: string }
  | { kind: 'send'; key: string; from: string; message: ServerMessage }
  | {
      kind: 'cancel-command';
      commandId: string;
      deploymentId: string;
      from: string;
      nonce: string;
    };
type InstanceMessage =
  | { kind: 'here'; nonce: string }
  | { kind: 'message'; message: AgentMessage }
  | { kind: 'lost'; id: string };
const RELAY_CHANNEL = 'agent:relay';
const instanceChannel = (id: string) => `agent:instance:${id}`;
/** How long an instance waits to hear that another holds a machine's socket. */
const PROBE_MS = 1_500;
/** The agent's last message of an operation: its relay entry can go. */
const FINAL_TYPES = new Set(['exit', 'rejected', 'deploy-result', 'pty-exit']);

/** Sends messages to one machine's agent, wherever its socket is. */
type Link = (message: ServerMessage) => boolean;

/** An open machine terminal, closed when its user's session or admin role goes. */
interface OpenMachineTerminal {
  ws: WebSocket;
  projectId: string;
  userId: string;
  sessionId?: string;
}

/** An operation waiting for messages from one machine (a command, a deploy, a terminal). */
interface Operation {
  key: string;
  onMessage(message: AgentMessage): void;
  onLost(): void;
}

const DEFAULT_TIMEOUT_MS = 30_000;
const DEPLOY_CHUNK_BYTES = 192 * 1024;
const INSTALL_TIMEOUT_MS = 10 * 60_000;
const HEALTH_TIMEOUT_MS = 30_000;
const DEFAULT_OUTPUT_BYTES = 64 * 1024;
/** How long a command may wait for delivery before the agent must refuse it. */
const DELIVERY_WINDOW_MS = 30_000;

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

function secret(prefix: string): string {
  return `${prefix}_${randomBytes(32).toString('base64url')}`;
}

function machineKey(deploymentId: string, machine: string): string {
  return `${deploymentId}/${machine}`;
}

function bearer(header: string | undefined): string | undefined {
  const match = /^Bearer\s+(\S+)$/i.exec(header ?? '');
  return match?.[1];
}

/** Answers an upgrade with the contract's error and closes it. */
function refuse(socket: Duplex, error: AppError): void {
  if (socket.destroyed) return;
  const body = JSON.stringify({ error: { code: error.code, message: error.message } });
  socket.end(
    `HTTP/1.1 ${error.status} ${STATUS_CODES[error.status] ?? 'Error'}\r\n` +
      'Content-Type: application/json\r\n' +
      `Content-Length: ${Buffer.byteLength(body)}\r\n` +
      'Connection: close\r\n\r\n' +
      body,
  );
}

/**
 * The machine agents: enrollment (one-use tokens issued per machine at provisioning, traded for
 * a credential stored hashed), the agent socket (`WS /api/agent`, on the public server and on a
 * local gateway socket mounted into `local` machines), heartbeats, and what runs through it:
 * commands fanned out to machines, deploys, machine terminals.
 */
export class AgentService {
  readonly #d: AgentServiceDeps;
  readonly #store: AgentStore;
  readonly #wss = new WebSocketServer({ noServer: true, maxPayload: 8 * 1024 * 1024 });
  readonly #connections = new Map<string, Connection>();
  readonly #operations = new Map<string, Operation>();
  readonly #heartbeat: NodeJS.Timeout;
  readonly #offlineListeners = new Set<(key: string) => void>();
  readonly #activeCommands = new Map<string, { deploymentId: string; abort: AbortController }>();
  readonly #deploying = new Map<string, Promise<void>>();
  readonly #instanceId = randomUUID();
  /** Operations of other instances on machines connected here: id → asking instance, machine. */
  readonly #relayed = new Map<string, { from: string; key: string }>();
  readonly #probes = new Map<string, () => void>();
  readonly #terminals = new Set<OpenMachineTerminal>();
  readonly #unsubscribe: Array<() => unknown> = [];
  #gateway: http.Server | undefined;
  #bundle: Promise<{ code: Buffer; sha256: string }> | undefined;
  #closed = false;

  constructor(deps: AgentServiceDeps) {
    this.#d = deps;
    this.#store = new AgentStore(deps.db);
    const every = deps.heartbeatMs ?? 1_000;
    const offlineAfter = deps.offlineAfterMs ?? 4_000;
    this.#heartbeat = setInterval(() => {
      const now = Date.now();
      for (const connection of this.#connections.values()) {
        if (now - connection.lastSeen > offlineAfter) connection.ws.terminate();
        else connection.ws.ping();
      }
    }, every).unref();
    deps.infrastructure.useAgent({
      environment: (deployment) => this.#terraformEnvironment(deployment),
      status: (deploymentId) => this.#status(deploymentId),
      apps: (deploymentId) => this.#apps(deploymentId),
    });
    if (deps.auth) {
      this.#unsubscribe.push(
        deps.auth.onSessionsRevoked((ids) => {
          for (const t of this.#terminals) {
            if (t.sessionId && ids.includes(t.sessionId)) {
              t.ws.close(socketCloseCodes.revoked, 'session revoked');
            }
          }
        }),
      );
    }
    // A machine terminal is for admins: a removal or a downgrade ends it at once.
    this.#unsubscribe.push(
      deps.projects.onMembershipChanged((change) => {
        if (change.role !== null && roleAtLeast(change.role, 'admin')) return;
        for (const t of this.#terminals) {
          if (t.projectId === change.projectId && t.userId === change.userId) {
            t.ws.close(socketCloseCodes.forbidden, 'access removed');
          }
        }
      }),
    );
  }

  /** Folder holding the local gateway's socket (mounted into `local` machines). */
  get gatewayDir(): string {
    return path.join(this.#d.dataDir, 'agent-gateway');
  }

  /**
   * Opens the local gateway: an HTTP server on a Unix socket in `gatewayDir` that serves only
   * the agent socket and the agent bundle, so local machines reach the server without it
   * listening beyond loopback.
   */
  async start(): Promise<void> {
    this.#unsubscribe.push(
      await this.#d.bus.subscribe(RELAY_CHANNEL, (m) => this.#onRelay(m as RelayMessage)),
      await this.#d.bus.subscribe(instanceChannel(this.#instanceId), (m) =>
        this.#onInstance(m as InstanceMessage),
      ),
    );
    const dir = this.gatewayDir;
    mkdirSync(dir, { recursive: true });
    chmodSync(dir, 0o755);
    const socketPath = path.join(dir, GATEWAY_SOCKET);
    rmSync(socketPath, { force: true });
    const server = http.createServer((req, res) => {
      if (req.method === 'GET' && req.url === `${AGENT_PATH}/agent.js`) {
        this.bundle().then(
          (bundle) => {
            res.writeHead(200, {
              'content-type': 'text/javascript',
              'x-vaporform-sha256': bundle.sha256,
            });
            res.end(bundle.code);
          },
          () => {
            res.writeHead(503).end();
          },
        );
        return;
      }
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 'not_found', message: 'Not found' } }));
    });
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      socket.on('error', () => socket.destroy());
      void (async () => {
        try {
          if (!(await this.handleUpgrade(req, socket, head))) {
            refuse(socket, new AppError('not_found', 'No WebSocket endpoint here'));
          }
        } catch (error) {
          refuse(
            socket,
            error instanceof AppError
              ? error
              : new AppError('internal', 'Something went wrong on our side'),
          );
        }
      })();
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(socketPath, () => resolve());
    });
    chmodSync(socketPath, 0o666);
    this.#gateway = server;
  }

  /** Closes every agent socket and the gateway. */
  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#heartbeat);
    for (const stop of this.#unsubscribe.splice(0)) await stop();
    for (const t of this.#terminals) t.ws.close(socketCloseCodes.shutdown, 'server shutting down');
    for (const connection of this.#connections.values()) connection.ws.terminate();
    const gateway = this.#gateway;
    if (gateway) {
      gateway.closeAllConnections();
      await new Promise<void>((resolve) => gateway.close(() => resolve()));
    }
  }

  /** The agent bundle (apps/agent, built with esbuild when missing or older than its sources). */
  bundle(): Promise<{ code: Buffer; sha256: string }> {
    this.#bundle ??= (async () => {
      const out = path.join(AGENT_APP_DIR, 'dist', 'agent.js');
      const sources = path.join(AGENT_APP_DIR, 'src');
      const newest = Math.max(
        ...readdirSync(sources).map((f) => statSync(path.join(sources, f)).mtimeMs),
        // The protocol it bundles lives in the SDK.
        statSync(AGENT_PROTOCOL_SOURCE).mtimeMs,
      );
      let built = 0;
      try {
        built = statSync(out).mtimeMs;
      } catch {
        // not built yet
      }
      if (built < newest) await buildAgent();
      const code = await readFile(out);
      return { code, sha256: createHash('sha256').update(code).digest('hex') };
    })();
    this.#bundle.catch(() => (this.#bundle = undefined));
    return this.#bundle;
  }

  // -------------------------------------------------------------------------------------------
  // Enrollment and the socket

  /**
   * Issues a one-use enrollment token for a machine. @returns the token (shown once, stored
   * only as its hash).
   */
  async issueToken(deploymentId: string, machine: string, ttlMs?: number): Promise<string> {
    const token = secret('vfe');
    await this.#store.insertToken({
      hash: sha256(token),
      deploymentId,
      machine,
      expiresAt: new Date(Date.now() + (ttlMs ?? this.#d.enrollmentTtlMs ?? 30 * 60_000)),
    });
    return token;
  }

  /**
   * The agent socket's gate (both entrances): an enrollment token (one use, unexpired) or a
   * machine credential, else 401 before any upgrade.
   * @throws AppError unauthenticated
   */
  async authenticate(
    authorization: string | undefined,
  ): Promise<{ deploymentId: string; machine: string; credential?: string }> {
    const token = bearer(authorization);
    const refused = () =>
      new AppError('unauthenticated', 'Unknown, used or expired agent credential');
    if (!token || token.length > 200) throw refused();
    let identity: { deploymentId: string; machine: string } | undefined;
    let credential: string | undefined;
    if (token.startsWith('vfe_')) {
      credential = secret('vfm');
      identity = await this.#store.enroll(sha256(token), sha256(credential));
    } else if (token.startsWith('vfm_')) {
      identity = await this.#store.machineByCredential(sha256(token));
    }
    if (!identity) throw refused();
    const deployment = await this.#d.infrastructure.internalDeployment(identity.deploymentId);
    if (!deployment || deployment.status === 'destroyed') throw refused();
    return { ...identity, ...(credential ? { credential } : {}) };
  }

  /** The upgrade handler for `WS /api/agent` (register it with the server's upgrade routing). */
  readonly handleUpgrade = async (
    req: IncomingMessage,
    socket: Duplex,
    head: Buffer,
  ): Promise<boolean> => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname !== AGENT_PATH) return false;
    if (this.#closed) throw new AppError('unavailable', 'The server is shutting down');
    const identity = await this.authenticate(req.headers.authorization);
    this.#wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws, identity));
    return true;
  };

  /** Takes an authenticated agent's socket (after {@link authenticate}). */
  accept(
    ws: WebSocket,
    identity: { deploymentId: string; machine: string; credential?: string },
  ): void {
    const key = machineKey(identity.deploymentId, identity.machine);
    const connection: Connection = { ws, key, ...identity, lastSeen: Date.now() };
    const older = this.#connections.get(key);
    this.#connections.set(key, connection);
    // The newest connection of a machine wins; operations carry over to it.
    if (older) older.ws.close(4000, 'replaced by a newer connection');
    ws.on('pong', () => (connection.lastSeen = Date.now()));
    ws.on('message', (data) => {
      connection.lastSeen = Date.now();
      const message = parseAgentMessage(String(data));
      if (!message || !('id' in message)) return;
      const operation = this.#operations.get(message.id);
      if (operation?.key === key) {
        operation.onMessage(message);
        return;
      }
      // An operation of another instance on this machine: its answers go back there.
      const relayed = this.#relayed.get(message.id);
      if (relayed?.key === key) {
        if (FINAL_TYPES.has(message.type)) this.#relayed.delete(message.id);
        void this.#publish(instanceChannel(relayed.from), { kind: 'message', message });
      }
    });
    ws.on('error', () => undefined);
    ws.on('close', () => {
      if (this.#connections.get(key) !== connection) return;
      this.#connections.delete(key);
      for (const operation of [...this.#operations.values()]) {
        if (operation.key === key) operation.onLost();
      }
      for (const [id, relayed] of [...this.#relayed]) {
        if (relayed.key !== key) continue;
        this.#relayed.delete(id);
        void this.#publish(instanceChannel(relayed.from), { kind: 'lost', id });
      }
      for (const listener of this.#offlineListeners) listener(key);
      void this.#announce(identity.deploymentId, identity.machine, 'offline');
    });
    this.#send(connection, {
      type: 'welcome',
      machine: identity.machine,
      ...(identity.credential ? { credential: identity.credential } : {}),
    });
    void this.#announce(identity.deploymentId, identity.machine, 'online');
  }

  async #announce(deploymentId: string, machine: string, agent: 'online' | 'offline') {
    try {
      await this.#store.touch(deploymentId, machine, agent === 'online');
      const deployment = await this.#d.infrastructure.internalDeployment(deploymentId);
      if (!deployment) return;
      await publishProjectEvent(this.#d.bus, deployment.projectId, 'agent_status', {
        deploymentId,
        machine,
        agent,
      });
    } catch (error) {
      this.#d.log.warn({ err: error, deploymentId, machine }, 'agent status not recorded');
    }
  }

  #send(connection: Connection, message: ServerMessage): boolean {
    if (connection.ws.readyState !== connection.ws.OPEN) return false;
    connection.ws.send(JSON.stringify(message));
    return true;
  }

  async #publish(channel: string, message: RelayMessage | InstanceMessage): Promise<void> {
    await this.#d.bus.publish(channel, message).catch((error: unknown) => {
      this.#d.log.warn({ err: error, channel }, 'agent relay message lost');
    });
  }

  /** Another instance asks for a machine whose socket may be here (else it stays silent). */
  #onRelay(m: RelayMessage): void {
    if (m.from === this.#instanceId) return;
    if (m.kind === 'cancel-command') {
      const active = this.#activeCommands.get(m.commandId);
      if (active?.deploymentId !== m.deploymentId) return;
      active.abort.abort();
      void this.#publish(instanceChannel(m.from), { kind: 'here', nonce: m.nonce });
      return;
    }
    const connection = this.#connections.get(m.key);
    if (!connection) return;
    if (m.kind === 'probe') {
      void this.#publish(instanceChannel(m.from), { kind: 'here', nonce: m.nonce });
      return;
    }
    const message = m.message;
    if (message.type === 'welcome') return;
    if (!this.#send(connection, message)) {
      void this.#publish(instanceChannel(m.from), { kind: 'lost', id: message.id });
      return;
    }
    if (message.type === 'pty-close') this.#relayed.delete(message.id);
    else if (message.type !== 'cancel') this.#relayed.set(message.id, { from: m.from, key: m.key });
  }

  /** Answers for this instance's operations on machines connected elsewhere. */
  #onInstance(m: InstanceMessage): void {
    if (m.kind === 'here') this.#probes.get(m.nonce)?.();
    else if (m.kind === 'lost') this.#operations.get(m.id)?.onLost();
    else if ('id' in m.message) this.#operations.get(m.message.id)?.onMessage(m.message);
  }

  /**
   * A way to a machine's agent: its socket here, else through the bus to the instance that
   * holds it (asked first; undefined when no instance answers within {@link PROBE_MS}).
   */
  async #link(key: string): Promise<Link | undefined> {
    const local: Link = (message) => {
      const connection = this.#connections.get(key);
      return connection ? this.#send(connection, message) : false;
    };
    if (this.#connections.has(key)) return local;
    const found = await this.#ask((nonce) => ({
      kind: 'probe',
      key,
      from: this.#instanceId,
      nonce,
    }));
    if (this.#connections.has(key)) return local; // it reconnected here meanwhile
    if (!found) return undefined;
    return (message) => {
      if (this.#connections.has(key)) return local(message);
      void this.#publish(RELAY_CHANNEL, { kind: 'send', key, from: this.#instanceId, message });
      return true;
    };
  }

  /** Asks every other instance; @returns whether one answered `here` within {@link PROBE_MS}. */
  async #ask(request: (nonce: string) => RelayMessage): Promise<boolean> {
    // An in-process bus means a single instance: nobody else to ask.
    if (this.#d.bus instanceof InProcessBus) return false;
    const nonce = randomUUID();
    const found = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), PROBE_MS);
      this.#probes.set(nonce, () => {
        clearTimeout(timer);
        resolve(true);
      });
      void this.#publish(RELAY_CHANNEL, request(nonce));
    });
    this.#probes.delete(nonce);
    return found;
  }

  /** Whether a machine's agent is connected to this instance. */
  online(deploymentId: string, machine: string): boolean {
    return this.#connections.has(machineKey(deploymentId, machine));
  }

  /** Sends a raw message to a machine's agent (tests: replays, expired commands). */
  sendRaw(deploymentId: string, machine: string, message: ServerMessage): boolean {
    const connection = this.#connections.get(machineKey(deploymentId, machine));
    return connection ? this.#send(connection, message) : false;
  }

  /**
   * Sends an `exec` as given (its id and expiry included) and resolves with the agent's final
   * answer to it (`exit` or `rejected`), or undefined when the machine is offline or silent for
   * `waitMs`. For tests of the agent's own refusals (replays, expired commands).
   */
  execRaw(
    deploymentId: string,
    machine: string,
    request: Extract<ServerMessage, { type: 'exec' }>,
    waitMs = 10_000,
  ): Promise<AgentMessage | undefined> {
    const key = machineKey(deploymentId, machine);
    const connection = this.#connections.get(key);
    if (!connection) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      const done = (message: AgentMessage | undefined) => {
        clearTimeout(timer);
        unregister();
        resolve(message);
      };
      const timer = setTimeout(() => done(undefined), waitMs);
      // A replayed id may still be registered by its first run: this one waits under a fresh key.
      const unregister = this.#operate(request.id, {
        key,
        onLost: () => done(undefined),
        onMessage: (message) => {
          if (message.type === 'exit' || message.type === 'rejected') done(message);
        },
      });
      if (!this.#send(connection, request)) done(undefined);
    });
  }

  /**
   * Registers an operation under `id` for a machine's messages. @returns unregister.
   */
  #operate(id: string, operation: Operation): () => void {
    this.#operations.set(id, operation);
    return () => {
      if (this.#operations.get(id) === operation) this.#operations.delete(id);
    };
  }

  async #status(deploymentId: string): Promise<Map<string, 'pending' | 'online' | 'offline'>> {
    // Connected here, or (the database says) to another instance.
    const enrolled = await this.#store.connectedStates(deploymentId);
    const result = new Map<string, 'pending' | 'online' | 'offline'>();
    for (const [machine, connected] of enrolled) {
      result.set(machine, this.online(deploymentId, machine) || connected ? 'online' : 'offline');
    }
    return result;
  }

  /** The app each machine serves, from the last finished deploy that reached it. */
  async #apps(deploymentId: string): Promise<Map<string, MachineApp>> {
    const apps = new Map<string, MachineApp>();
    for (const row of await this.#store.listDeploys(deploymentId, 20)) {
      if (!row.finished_at) continue;
      for (const r of (row.results ?? []) as DeployResult[]) {
        if (apps.has(r.machine) || r.status === 'agent_lost') continue;
        apps.set(r.machine, {
          status: r.status === 'failed' ? 'failed' : 'running',
          url: r.url,
          release: row.release,
          deployedAt: row.finished_at.toISOString(),
          ...(r.status === 'rolled_back' ? { rolledBack: true } : {}),
        });
      }
    }
    return apps;
  }

  /**
   * What a provisioning run gives Terraform (environment only): a fresh token per machine
   * slot, where the agent dials and, for local machines, the gateway folder to mount.
   */
  async #terraformEnvironment(deployment: {
    id: string;
    provider: string;
    kind: string;
    machineCount: number;
  }): Promise<Record<string, string>> {
    const tokens: string[] = [];
    // Machines are created only by applies: a refresh or a destroy needs no token.
    for (let i = 0; deployment.kind === 'apply' && i < deployment.machineCount; i++) {
      tokens.push(await this.issueToken(deployment.id, `vf-${deployment.id}-${i}`));
    }
    const bundle = await this.bundle();
    const env: Record<string, string> = {
      TF_VAR_agent_tokens: JSON.stringify(tokens),
      TF_VAR_agent_sha256: bundle.sha256,
    };
    if (deployment.provider === 'local') {
      env.TF_VAR_agent_server_url = `ws+unix://${MACHINE_GATEWAY_DIR}/${GATEWAY_SOCKET}:${AGENT_PATH}`;
      env.TF_VAR_agent_socket_dir = this.gatewayDir;
      env.TF_VAR_bootstrap = localBootstrap();
    } else {
      const url = new URL(AGENT_PATH, this.#d.publicUrl);
      url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
      env.TF_VAR_agent_server_url = url.toString();
    }
    return env;
  }

  // -------------------------------------------------------------------------------------------
  // Commands

  /**
   * Runs a command on every machine of a deployment (or `input.machines`), `maxConcurrency` at
   * a time, and stops sending it once more than `maxErrors` machines failed (the rest
   * `skipped`). Never waits past the timeout plus a small grace; a machine whose agent goes
   * away is `agent_lost` at once. Admins only; recorded in the activity log.
   * @throws AppError not_found (non-members, unknown machines), forbidden (non-admins)
   */
  async command(
    userId: string,
    deploymentId: string,
    input: CommandInput,
    onEvent?: (event: CommandEvent) => void,
    signal?: AbortSignal,
  ): Promise<{ id: string; results: CommandResult[] }> {
    const deployment = await this.requireAdmin(userId, deploymentId);
    const names = this.#select(deployment, input.machines);
    const timeoutMs = input.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const cap = input.maxOutputBytes ?? DEFAULT_OUTPUT_BYTES;
    const concurrency = Math.max(1, input.maxConcurrency ?? names.length);
    const maxErrors = input.maxErrors ?? Number.POSITIVE_INFINITY;
    const commandId = await this.#store.insertCommand({
      deploymentId: deployment.id,
      userId,
      command: input.command,
      args: input.args,
      machines: names,
    });
    onEvent?.({ type: 'command', data: { id: commandId, machines: names } });
    const results = new Map<string, CommandResult>();
    let errorCount = 0;
    let next = 0;
    const cancels = new Set<() => void>();
    const abort = new AbortController();
    this.#activeCommands.set(commandId, { deploymentId: deployment.id, abort });
    if (signal?.aborted) abort.abort();
    signal?.addEventListener('abort', () => abort.abort());
    const canceled = () => abort.signal.aborted;
    abort.signal.addEventListener('abort', () => {
      for (const cancel of cancels) cancel();
    });
    const worker = async () => {
      while (next < names.length) {
        const machine = names[next++]!;
        if (errorCount > maxErrors || canceled()) {
          const status: CommandStatus = canceled() ? 'canceled' : 'skipped';
          const result = emptyResult(
            machine,
            status,
            canceled() ? 'Canceled' : 'maxErrors reached',
          );
          results.set(machine, result);
          onEvent?.({ type: 'result', data: result });
          continue;
        }
        const result = await this.#runOn(deployment.id, machine, input, timeoutMs, cap, {
          onEvent,
          cancels,
        });
        if (result.status !== 'succeeded') errorCount++;
        results.set(machine, result);
        onEvent?.({ type: 'result', data: result });
      }
    };
    try {
      await Promise.all(Array.from({ length: Math.min(concurrency, names.length) }, worker));
    } finally {
      this.#activeCommands.delete(commandId);
    }
    const ordered = names.map((n) => results.get(n)!);
    await this.#store.finishCommand(commandId, ordered);
    const counts: Record<string, number> = {};
    for (const r of ordered) counts[r.status] = (counts[r.status] ?? 0) + 1;
    await this.#d.activity.record({
      projectId: deployment.projectId,
      userId,
      type: 'infrastructure_command',
      description: `Ran ${JSON.stringify(truncate(commandLine(input), 200))} on ${names.length} machine(s)`,
      sourceType: 'user',
      metadata: {
        deploymentId: deployment.id,
        commandId,
        command: truncate(commandLine(input), 2000),
        machines: names,
        results: ordered.map((r) => ({
          machine: r.machine,
          status: r.status,
          exitCode: r.exitCode,
          durationMs: r.durationMs,
        })),
        counts,
      },
    });
    return { id: commandId, results: ordered };
  }

  async #runOn(
    deploymentId: string,
    machine: string,
    input: CommandInput,
    timeoutMs: number,
    cap: number,
    context: { onEvent?: (event: CommandEvent) => void; cancels: Set<() => void> },
  ): Promise<CommandResult> {
    const key = machineKey(deploymentId, machine);
    const started = Date.now();
    const send = await this.#link(key);
    if (!send) return emptyResult(machine, 'agent_lost', 'The agent is not connected');
    const id = randomUUID();
    const output = { stdout: '', stderr: '' };
    let truncated = false;
    return new Promise<CommandResult>((resolve) => {
      let done = false;
      const finish = (partial: Partial<CommandResult> & { status: CommandStatus }) => {
        if (done) return;
        done = true;
        clearTimeout(deadline);
        unregister();
        context.cancels.delete(cancel);
        resolve({
          machine,
          exitCode: null,
          stdout: output.stdout,
          stderr: output.stderr,
          truncated,
          durationMs: Date.now() - started,
          ...partial,
        });
      };
      const cancel = () => void send({ type: 'cancel', id });
      context.cancels.add(cancel);
      // The agent kills the group at the timeout; past the grace the server stops waiting.
      const deadline = setTimeout(
        () => {
          cancel();
          finish({ status: 'timed_out', error: 'No answer from the agent within the timeout' });
        },
        timeoutMs + (this.#d.graceMs ?? 3_000),
      );
      const unregister = this.#operate(id, {
        key,
        onLost: () => finish({ status: 'agent_lost', error: 'The agent went away' }),
        onMessage: (message) => {
          switch (message.type) {
            case 'started':
              context.onEvent?.({ type: 'started', data: { machine } });
              return;
            case 'output': {
              const room = cap - Buffer.byteLength(output[message.stream]);
              if (room <= 0) {
                truncated = true;
                return;
              }
              let data = message.data;
              if (Buffer.byteLength(data) > room) {
                data = Buffer.from(data).subarray(0, room).toString('utf8');
                truncated = true;
              }
              output[message.stream] += data;
              context.onEvent?.({
                type: 'output',
                data: { machine, stream: message.stream, data },
              });
              return;
            }
            case 'rejected':
              finish({ status: 'failed', error: `Refused by the agent (${message.reason})` });
              return;
            case 'exit':
              truncated ||= message.truncated;
              finish({
                status:
                  message.outcome === 'timed_out'
                    ? 'timed_out'
                    : message.outcome === 'canceled'
                      ? 'canceled'
                      : message.exitCode === 0
                        ? 'succeeded'
                        : 'failed',
                exitCode: message.exitCode,
                durationMs: message.durationMs,
                ...(message.error ? { error: message.error } : {}),
              });
              return;
            default:
              return;
          }
        },
      });
      const sent = send({
        type: 'exec',
        id,
        command: input.command,
        ...(input.args ? { args: input.args } : {}),
        timeoutMs,
        maxOutputBytes: cap,
        expiresAt: Date.now() + DELIVERY_WINDOW_MS,
      });
      if (!sent) finish({ status: 'agent_lost', error: 'The agent is not connected' });
    });
  }

  /**
   * Cancels a running command: its process groups are killed (`canceled`), queued machines
   * are `canceled` too. @throws AppError conflict when it is not running (here).
   */
  async cancelCommand(userId: string, deploymentId: string, commandId: string): Promise<void> {
    const deployment = await this.requireAdmin(userId, deploymentId);
    const active = this.#activeCommands.get(commandId);
    if (active?.deploymentId === deployment.id) {
      active.abort.abort();
      return;
    }
    // Running on another instance: that one aborts it and says so.
    const found = await this.#ask((nonce) => ({
      kind: 'cancel-command',
      commandId,
      deploymentId: deployment.id,
      from: this.#instanceId,
      nonce,
    }));
    if (!found) throw errors.conflict('This command is not running');
  }

  /** Past commands of a deployment, newest first (member). */
  async commands(userId: string, deploymentId: string, limit = 50): Promise<CommandRow[]> {
    const deployment = await this.#d.infrastructure.get(userId, deploymentId);
    return this.#store.listCommands(deployment.id, limit);
  }

  /** The deployment, when `userId` is an admin of its project. @throws AppError 404, 403 */
  async requireAdmin(userId: string, deploymentId: string): Promise<Deployment> {
    const deployment = await this.#d.infrastructure.get(userId, deploymentId);
    await this.#d.projects.requireRole(deployment.projectId, userId, 'admin');
    return deployment;
  }

  #select(deployment: Deployment, wanted: string[] | undefined): string[] {
    const all = deployment.machines.map((m) => m.name);
    if (!wanted) return all;
    const unknown = wanted.filter((name) => !all.includes(name));
    if (unknown.length > 0) throw errors.notFound(`machine ${unknown[0]}`);
    return [...new Set(wanted)];
  }

  // -------------------------------------------------------------------------------------------
  // Deploy

  /**
   * Ships the project's current files (a checksummed tar.gz through each agent) to every
   * machine, installs and starts them with the template's commands under the agent's
   * supervisor, and keeps the previous release (a release that does not answer is rolled
   * back). Answers at once; progress as `deploy_progress` on the project socket.
   * @throws AppError 404/403 as commands, conflict while the deployment is not ready or
   *   another deploy runs.
   */
  async deploy(userId: string, deploymentId: string): Promise<DeployView> {
    const deployment = await this.requireAdmin(userId, deploymentId);
    if (deployment.status !== 'ready') {
      throw errors.conflict(`The deployment is ${deployment.status}, not ready`);
    }
    if (this.#deploying.has(deployment.id)) {
      throw errors.conflict('A deploy is already running on this deployment');
    }
    const project = await this.#d.projects.findById(deployment.projectId);
    const template = project?.templateId
      ? await this.#d.templates.find(project.templateId)
      : undefined;
    const entries = [];
    for (const file of await this.#d.files.list(deployment.projectId)) {
      entries.push({
        path: file.path,
        data: await this.#d.files.readBytes(deployment.projectId, file.path),
      });
    }
    const archive = tarGz(entries);
    const sha256 = createHash('sha256').update(archive).digest('hex');
    const hasPackage = entries.some((e) => e.path === 'package.json');
    const plan = {
      install: template?.run.install ?? (hasPackage ? 'npm install' : undefined),
      run: template?.run.dev ?? 'npm start',
      port: template?.run.port ?? 3000,
    };
    const release = `r${Date.now()}`;
    const id = await this.#store.insertDeploy({
      deploymentId: deployment.id,
      userId,
      release,
      sha256,
    });
    const machines = deployment.machines;
    const progress = (data: DeployProgress) =>
      publishProjectEvent(this.#d.bus, deployment.projectId, 'deploy_progress', {
        deploymentId: deployment.id,
        deployId: id,
        ...data,
      }).catch(() => undefined);
    const run = (async () => {
      const results = await Promise.all(
        machines.map((m) =>
          this.#deployOn(deployment.id, m.name, m.address, {
            archive,
            sha256,
            release,
            ...plan,
            progress,
          }),
        ),
      );
      const ok = results.filter((r) => r.status === 'succeeded').length;
      const status: DeployStatus =
        ok === results.length && ok > 0 ? 'succeeded' : ok === 0 ? 'failed' : 'partial';
      await this.#store.finishDeploy(id, status, results);
      if (ok > 0) await this.#d.projects.recordDeployment(deployment.projectId);
      await this.#d.activity.record({
        projectId: deployment.projectId,
        userId,
        type: 'infrastructure_deploy',
        description: `Deployed ${release} to ${machines.length} machine(s): ${status}`,
        sourceType: 'user',
        metadata: { deploymentId: deployment.id, deployId: id, release, sha256, results },
      });
      await progress({ status, results });
    })()
      .catch((error: unknown) => {
        this.#d.log.error({ err: error, deploymentId: deployment.id }, 'deploy crashed');
        return this.#store.finishDeploy(id, 'failed', []).catch(() => undefined);
      })
      .finally(() => this.#deploying.delete(deployment.id));
    this.#deploying.set(deployment.id, run);
    return (await this.deploys(userId, deployment.id)).find((d) => d.id === id)!;
  }

  /** Waits for the deploy running on a deployment, if any (tests, shutdown). */
  async settled(deploymentId: string): Promise<void> {
    await this.#deploying.get(deploymentId);
  }

  /** Deploy history of a deployment, newest first (member). */
  async deploys(userId: string, deploymentId: string, limit = 50): Promise<DeployView[]> {
    const deployment = await this.#d.infrastructure.get(userId, deploymentId);
    return (await this.#store.listDeploys(deployment.id, limit)).map(deployView);
  }

  async #deployOn(
    deploymentId: string,
    machine: string,
    address: string,
    plan: {
      archive: Buffer;
      sha256: string;
      release: string;
      install: string | undefined;
      run: string;
      port: number;
      progress: (data: DeployProgress) => Promise<unknown>;
    },
  ): Promise<DeployResult> {
    const key = machineKey(deploymentId, machine);
    const send = await this.#link(key);
    const started = Date.now();
    const result = (status: DeployResult['status'], error?: string): DeployResult => ({
      machine,
      status,
      url:
        status === 'succeeded' || status === 'rolled_back'
          ? `http://${address}:${plan.port}/`
          : null,
      ...(error ? { error } : {}),
      durationMs: Date.now() - started,
    });
    if (!send) return result('agent_lost', 'The agent is not connected');
    const id = randomUUID();
    return new Promise<DeployResult>((resolve) => {
      const finish = (r: DeployResult) => {
        clearTimeout(deadline);
        unregister();
        resolve(r);
      };
      const deadline = setTimeout(
        () => finish(result('failed', 'No answer from the agent in time')),
        INSTALL_TIMEOUT_MS + HEALTH_TIMEOUT_MS * 2 + 30_000,
      );
      const unregister = this.#operate(id, {
        key,
        onLost: () => finish(result('agent_lost', 'The agent went away')),
        onMessage: (message) => {
          if (message.type === 'deploy-progress') {
            void plan.progress({ machine, stage: message.stage, message: message.message });
          } else if (message.type === 'deploy-result') {
            if (message.ok) finish(result('succeeded'));
            else finish(result(message.rolledBack ? 'rolled_back' : 'failed', message.error));
          }
        },
      });
      for (let offset = 0; offset < plan.archive.length; offset += DEPLOY_CHUNK_BYTES) {
        const data = plan.archive.subarray(offset, offset + DEPLOY_CHUNK_BYTES).toString('base64');
        send({ type: 'deploy-chunk', id, data });
      }
      const sent = send({
        type: 'deploy-commit',
        id,
        release: plan.release,
        sha256: plan.sha256,
        ...(plan.install ? { install: plan.install } : {}),
        installTimeoutMs: INSTALL_TIMEOUT_MS,
        run: plan.run,
        port: plan.port,
        env: { NODE_ENV: 'production' },
        healthTimeoutMs: HEALTH_TIMEOUT_MS,
      });
      if (!sent) finish(result('agent_lost', 'The agent is not connected'));
    });
  }

  // -------------------------------------------------------------------------------------------
  // Machine terminal

  /**
   * A shell on one machine through its agent, for `WS …/machines/:name/terminal` (admins, as
   * commands: a shell runs anything). Client frames: keystrokes (text or binary); frames to the
   * client: the shell's output (binary). Closes 1000 when the shell exits, 1011 when the agent
   * goes away. @throws AppError 404/403, conflict when the agent is offline.
   */
  async prepareTerminal(
    caller: { userId: string; sessionId?: string },
    deploymentId: string,
    machine: string,
    size: { cols: number; rows: number },
  ): Promise<{ open(ws: WebSocket): void }> {
    const deployment = await this.requireAdmin(caller.userId, deploymentId);
    this.#select(deployment, [machine]);
    const key = machineKey(deployment.id, machine);
    const send = await this.#link(key);
    if (!send) throw errors.conflict('The agent of this machine is offline');
    return {
      open: (ws) => {
        const id = randomUUID();
        const terminal: OpenMachineTerminal = {
          ws,
          projectId: deployment.projectId,
          userId: caller.userId,
          ...(caller.sessionId ? { sessionId: caller.sessionId } : {}),
        };
        this.#terminals.add(terminal);
        const unregister = this.#operate(id, {
          key,
          onLost: () => ws.close(1011, 'agent lost'),
          onMessage: (message) => {
            if (message.type === 'pty-data') ws.send(Buffer.from(message.data, 'utf8'));
            else if (message.type === 'pty-exit') ws.close(socketCloseCodes.exited, 'shell exited');
          },
        });
        send({ type: 'pty-open', id, cols: size.cols, rows: size.rows });
        ws.on('message', (data, binary) => {
          const text = Buffer.isBuffer(data) ? data.toString('utf8') : String(data);
          if (!binary && text.startsWith('{')) {
            const control = parseControlFrame(text);
            if (control) {
              send({ type: 'pty-resize', id, cols: control.cols, rows: control.rows });
              return;
            }
          }
          send({ type: 'pty-input', id, data: text });
        });
        ws.on('close', () => {
          this.#terminals.delete(terminal);
          unregister();
          send({ type: 'pty-close', id });
        });
        ws.on('error', () => undefined);
        // A change announced while the socket was opening found no terminal to close.
        this.#d.projects.requireRole(deployment.projectId, caller.userId, 'admin').catch(() => {
          ws.close(socketCloseCodes.forbidden, 'access removed');
        });
      },
    };
  }

  /** Calls `listener` with the machine key whenever an agent goes offline. @returns remove. */
  onOffline(listener: (key: string) => void): () => void {
    this.#offlineListeners.add(listener);
    return () => this.#offlineListeners.delete(listener);
  }
}

/** The contract's terminal control frame (`{"type":"resize","cols","rows"}`), else undefined. */
function parseControlFrame(text: string): TerminalControlFrame | undefined {
  try {
    const parsed = terminalControlFrame.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

function deployView(row: DeployRow): DeployView {
  return {
    id: row.id,
    deploymentId: row.deployment_id,
    release: row.release,
    sha256: row.sha256,
    status: row.status,
    results: (row.results as DeployResult[]) ?? [],
    createdAt: row.created_at.toISOString(),
    finishedAt: row.finished_at?.toISOString() ?? null,
  };
}

function emptyResult(machine: string, status: CommandStatus, error: string): CommandResult {
  return {
    machine,
    status,
    exitCode: null,
    stdout: '',
    stderr: '',
    truncated: false,
    durationMs: 0,
    error,
  };
}

function commandLine(input: CommandInput): string {
  return input.args ? [input.command, ...input.args].join(' ') : input.command;
}

function truncate(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

/** Runs apps/agent/build.mjs (esbuild) in a child process. */
function buildAgent(): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(AGENT_APP_DIR, 'build.mjs')], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`agent build failed: ${stderr.slice(-500)}`)),
    );
  });
}

/**
 * The `local` machines' bootstrap, run by the container as its main process: keeps the
 * enrollment token in a 0600 file, then fetches the agent from the gateway and runs it, again
 * whenever it exits (the container's init reaps; Docker restarts the container if this dies).
 */
export function localBootstrap(): string {
  return [
    'set -u',
    'export VAPORFORM_AGENT_DIR="$HOME/.vaporform"',
    'mkdir -p "$VAPORFORM_AGENT_DIR" && chmod 700 "$VAPORFORM_AGENT_DIR"',
    'if [ ! -s "$VAPORFORM_AGENT_DIR/credential" ] && [ -n "${VAPORFORM_ENROLLMENT_TOKEN:-}" ]; then',
    '  (umask 077 && printf %s "$VAPORFORM_ENROLLMENT_TOKEN" > "$VAPORFORM_AGENT_DIR/enrollment-token")',
    'fi',
    'unset VAPORFORM_ENROLLMENT_TOKEN',
    'while :; do',
    `  curl -fsS --unix-socket ${MACHINE_GATEWAY_DIR}/${GATEWAY_SOCKET} -o "$VAPORFORM_AGENT_DIR/agent.js.new" http://agent${AGENT_PATH}/agent.js && mv -f "$VAPORFORM_AGENT_DIR/agent.js.new" "$VAPORFORM_AGENT_DIR/agent.js"`,
    '  [ -s "$VAPORFORM_AGENT_DIR/agent.js" ] && node "$VAPORFORM_AGENT_DIR/agent.js"',
    '  sleep 1',
    'done',
  ].join('\n');
}
