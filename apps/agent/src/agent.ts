/**
 * The Vaporform machine agent: one file (bundled with its only dependency, `ws`) that runs on
 * plain Node.js 18+ on every provisioned machine. It dials OUT to the server's agent socket, so a
 * machine needs no open port, and answers the server's commands there.
 *
 * Configuration (environment):
 * - `VAPORFORM_SERVER_URL`: the agent socket, `wss://host/api/agent` (or `ws+unix:///sock:/api/agent`).
 * - `VAPORFORM_AGENT_DIR`: where the agent keeps its credential (0600), the command ids it has
 *   run and the deployed releases (default `/var/lib/vaporform-agent`).
 * - `VAPORFORM_ENROLLMENT_TOKEN` (or the file `<dir>/enrollment-token`): the one-use token
 *   issued for this machine at provisioning, exchanged on the first connect for a credential.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import WebSocket from 'ws';
import {
  AGENT_VERSION,
  parseServerMessage,
  type AgentMessage,
  type DeployCommit,
  type ExecRequest,
  type ServerMessage,
} from '@vaporform/sdk/agent-protocol';

const serverUrl = process.env.VAPORFORM_SERVER_URL ?? '';
const dir = process.env.VAPORFORM_AGENT_DIR ?? '/var/lib/vaporform-agent';
const credentialFile = path.join(dir, 'credential');
const tokenFile = path.join(dir, 'enrollment-token');
const seenFile = path.join(dir, 'commands.json');
const appDir = path.join(dir, 'app');
/** The server pings every second; this long without a word means the link is dead. */
const SILENCE_MS = 10_000;
/** How long a killed group gets between SIGTERM and SIGKILL. */
const KILL_GRACE_MS = 1_000;

let socket: WebSocket | undefined;
let backoffMs = 500;

function log(message: string, extra: Record<string, unknown> = {}): void {
  process.stdout.write(
    `${JSON.stringify({ time: new Date().toISOString(), message, ...extra })}\n`,
  );
}

function send(message: AgentMessage): void {
  if (socket?.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
}

/** Writes a file readable only by this user, atomically. */
function writePrivate(file: string, data: string): void {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, data, { mode: 0o600 });
  fs.chmodSync(tmp, 0o600);
  fs.renameSync(tmp, file);
}

function readText(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// The connection

function connect(): void {
  const credential = readText(credentialFile);
  const token = credential ?? process.env.VAPORFORM_ENROLLMENT_TOKEN ?? readText(tokenFile);
  if (!serverUrl || !token) {
    log('no server URL or no credential/enrollment token; retrying', { serverUrl });
    setTimeout(connect, 5_000);
    return;
  }
  const ws = new WebSocket(serverUrl, {
    headers: { authorization: `Bearer ${token}` },
    handshakeTimeout: 10_000,
    maxPayload: 64 * 1024 * 1024,
  });
  socket = ws;
  let silence: NodeJS.Timeout | undefined;
  const alive = () => {
    clearTimeout(silence);
    silence = setTimeout(() => ws.terminate(), SILENCE_MS);
  };
  ws.on('open', () => {
    backoffMs = 500;
    alive();
    log('connected', { serverUrl, enrolling: !credential });
    send({
      type: 'hello',
      version: AGENT_VERSION,
      hostname: os.hostname(),
      running: [...running.keys()],
      app: appState(),
    });
  });
  ws.on('ping', alive);
  ws.on('message', (data) => {
    alive();
    const message = parseServerMessage(String(data));
    if (!message) return;
    handle(message).catch((error: unknown) =>
      log('message failed', { type: message.type, error: String(error) }),
    );
  });
  ws.on('unexpected-response', (_req, res) => {
    log('refused by the server', { status: res.statusCode });
    // A 401 with a stale credential cannot heal by retrying fast.
    if (res.statusCode === 401) backoffMs = Math.max(backoffMs, 5_000);
    ws.terminate();
  });
  ws.on('error', (error) => log('socket error', { error: error.message }));
  ws.on('close', () => {
    clearTimeout(silence);
    if (socket === ws) socket = undefined;
    const wait = backoffMs;
    backoffMs = Math.min(backoffMs * 2, 5_000);
    setTimeout(connect, wait);
  });
}

async function handle(message: ServerMessage): Promise<void> {
  switch (message.type) {
    case 'welcome':
      if (message.credential) {
        fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
        writePrivate(credentialFile, message.credential);
        fs.rmSync(tokenFile, { force: true });
        log('enrolled', { machine: message.machine });
      }
      return;
    case 'exec':
      return exec(message);
    case 'cancel':
      running.get(message.id)?.stop('canceled');
      return;
    case 'deploy-chunk':
      return deployChunk(message.id, message.data);
    case 'deploy-commit':
      return deployCommit(message);
    case 'pty-open':
      return ptyOpen(message.id, message.cols, message.rows);
    case 'pty-input':
      ptys.get(message.id)?.stdin?.write(message.data);
      return;
    case 'pty-resize':
      ptyResize(message.id, message.cols, message.rows);
      return;
    case 'pty-close':
      killGroup(ptys.get(message.id), 'SIGKILL');
      return;
  }
}

// ---------------------------------------------------------------------------------------------
// Commands: at most once per id, in a process group of their own, with a timeout and a cap

interface Running {
  stop(reason: 'canceled' | 'timed_out'): void;
}
const running = new Map<string, Running>();

/** Command ids already run (id → expiry), kept on disk so a restarted agent still refuses them. */
function loadSeen(): Map<string, number> {
  try {
    const entries = JSON.parse(fs.readFileSync(seenFile, 'utf8')) as [string, number][];
    return new Map(entries.filter(([, until]) => until > Date.now()));
  } catch {
    return new Map();
  }
}
const seen = loadSeen();

function remember(id: string, expiresAt: number): void {
  for (const [key, until] of seen) if (until < Date.now() - 60_000) seen.delete(key);
  // Kept past the expiry: until then the expiry check alone refuses the id again.
  seen.set(id, expiresAt + 60_000);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  writePrivate(seenFile, JSON.stringify([...seen]));
}

function killGroup(child: ChildProcess | undefined, signal: NodeJS.Signals): void {
  if (!child?.pid) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // already gone
  }
}

function exec(request: ExecRequest): void {
  const { id } = request;
  if (typeof id !== 'string' || id.length === 0 || id.length > 100) return;
  if (seen.has(id) || running.has(id)) {
    send({ type: 'rejected', id, reason: 'replay', message: 'This command id was already run' });
    return;
  }
  if (!(request.expiresAt > Date.now())) {
    send({
      type: 'rejected',
      id,
      reason: 'expired',
      message: 'This command expired before it ran',
    });
    return;
  }
  remember(id, request.expiresAt);
  const started = Date.now();
  const cap = request.maxOutputBytes;
  let truncated = false;
  let outcome: 'exited' | 'canceled' | 'timed_out' = 'exited';
  const child = request.args
    ? spawn(request.command, request.args, {
        detached: true,
        stdio: ['ignore', 'pipe', 'pipe'],
        cwd: request.cwd ?? os.homedir(),
      })
    : spawn('/bin/sh', ['-c', request.command], {
        detached: true,
        stdio: ['ignore', 'pipe', 'pipe'],
        cwd: request.cwd ?? os.homedir(),
      });
  const sent = { stdout: 0, stderr: 0 };
  for (const stream of ['stdout', 'stderr'] as const) {
    const decoder = new StringDecoder('utf8');
    child[stream]?.on('data', (chunk: Buffer) => {
      const room = cap - sent[stream];
      if (room <= 0) {
        truncated = true;
        return;
      }
      const part = chunk.length > room ? chunk.subarray(0, room) : chunk;
      if (part.length < chunk.length) truncated = true;
      sent[stream] += part.length;
      const data = decoder.write(part);
      if (data) send({ type: 'output', id, stream, data });
    });
  }
  let timer: NodeJS.Timeout | undefined;
  const stop = (reason: 'canceled' | 'timed_out') => {
    if (outcome !== 'exited') return;
    outcome = reason;
    killGroup(child, 'SIGTERM');
    setTimeout(() => killGroup(child, 'SIGKILL'), KILL_GRACE_MS).unref();
  };
  running.set(id, { stop });
  timer = setTimeout(() => stop('timed_out'), request.timeoutMs);
  send({ type: 'started', id, pid: child.pid ?? 0 });
  let reported = false;
  const finish = (exitCode: number | null, signal: string | null, error?: string) => {
    if (reported) return;
    reported = true;
    clearTimeout(timer);
    timer = undefined;
    running.delete(id);
    // Whatever the command left in its group dies with it.
    killGroup(child, 'SIGKILL');
    send({
      type: 'exit',
      id,
      exitCode,
      signal,
      outcome,
      truncated,
      durationMs: Date.now() - started,
      ...(error ? { error } : {}),
    });
  };
  child.on('error', (error) => finish(127, null, error.message));
  child.on('exit', (code, signal) => {
    // Output still in the pipes comes first, unless a daemonized child holds them open.
    let done = 0;
    const closed = () => {
      if (++done === 2) finish(code, signal);
    };
    if (child.stdout?.readableEnded) closed();
    else child.stdout?.once('close', closed);
    if (child.stderr?.readableEnded) closed();
    else child.stderr?.once('close', closed);
    setTimeout(() => finish(code, signal), 200).unref();
  });
}

// ---------------------------------------------------------------------------------------------
// Deploy: an archive (checksummed), extracted into a release, started under a supervisor that
// restarts it; the previous release comes back when the new one does not answer.

interface AppState {
  current?: string;
  previous?: string;
  run?: string;
  port?: number;
  env?: Record<string, string>;
}
const stateFile = path.join(appDir, 'state.json');
const incoming = new Map<string, { file: string; fd: number }>();

function appState(): AppState {
  try {
    return JSON.parse(fs.readFileSync(stateFile, 'utf8')) as AppState;
  } catch {
    return {};
  }
}

function deployChunk(id: string, data: string): void {
  let upload = incoming.get(id);
  if (!upload) {
    fs.mkdirSync(path.join(appDir, 'incoming'), { recursive: true, mode: 0o700 });
    const file = path.join(appDir, 'incoming', `${id.replace(/[^a-zA-Z0-9-]/g, '')}.tar.gz`);
    upload = { file, fd: fs.openSync(file, 'w', 0o600) };
    incoming.set(id, upload);
  }
  fs.writeSync(upload.fd, Buffer.from(data, 'base64'));
}

function runShell(
  command: string,
  cwd: string,
  env: NodeJS.ProcessEnv,
  timeoutMs: number,
): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn('/bin/sh', ['-c', command], {
      cwd,
      env,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    const keep = (chunk: Buffer) => {
      output = (output + chunk.toString('utf8')).slice(-4000);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    const timer = setTimeout(() => killGroup(child, 'SIGKILL'), timeoutMs);
    child.on('error', (error) => resolve({ code: 127, output: error.message }));
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

/** The app's supervisor: restarts the run command whenever it exits, until stopped. */
class Supervisor {
  #child: ChildProcess | undefined;
  #stopped = false;
  #delay = 500;
  #timer: NodeJS.Timeout | undefined;
  /** How often the app exited (a release that keeps crashing fails its health check early). */
  exits = 0;
  constructor(
    readonly release: string,
    readonly state: AppState,
  ) {}

  start(): void {
    if (this.#stopped) return;
    const cwd = path.join(appDir, 'releases', this.release);
    const logFd = fs.openSync(path.join(appDir, 'app.log'), 'a', 0o600);
    const startedAt = Date.now();
    const child = spawn('/bin/sh', ['-c', this.state.run ?? 'npm start'], {
      cwd,
      detached: true,
      stdio: ['ignore', logFd, logFd],
      env: { ...process.env, ...this.state.env, PORT: String(this.state.port ?? 3000) },
    });
    fs.closeSync(logFd);
    this.#child = child;
    if (child.pid) fs.writeFileSync(path.join(appDir, 'app.pid'), String(child.pid));
    child.on('exit', () => {
      this.exits++;
      if (this.#child === child) this.#child = undefined;
      if (this.#stopped) return;
      this.#delay = Date.now() - startedAt > 30_000 ? 500 : Math.min(this.#delay * 2, 10_000);
      this.#timer = setTimeout(() => this.start(), this.#delay);
    });
    child.on('error', () => undefined);
  }

  alive(): boolean {
    return this.#child?.exitCode === null;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    const child = this.#child;
    if (!child) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    killGroup(child, 'SIGTERM');
    const timer = setTimeout(() => killGroup(child, 'SIGKILL'), 3_000);
    await exited;
    clearTimeout(timer);
  }
}
let supervisor: Supervisor | undefined;

/** An app left running by an earlier agent process (its group), stopped before a new start. */
function stopOrphan(): void {
  const pid = Number(readText(path.join(appDir, 'app.pid')));
  if (pid > 1) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
}

function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', timeout: 2_000 }, (res) => {
      res.resume();
      resolve((res.statusCode ?? 500) < 500);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => {
      req.destroy();
      resolve(false);
    });
  });
}

async function healthy(port: number, timeoutMs: number, app?: Supervisor): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until && (app?.exits ?? 0) < 3) {
    if (await answers(port)) return true;
    await new Promise((r) => setTimeout(r, 300));
  }
  return false;
}

async function deployCommit(commit: DeployCommit): Promise<void> {
  const { id } = commit;
  const progress = (stage: string, message: string) =>
    send({ type: 'deploy-progress', id, stage, message });
  const fail = (error: string, rolledBack: boolean) =>
    send({ type: 'deploy-result', id, ok: false, error, rolledBack, release: commit.release });
  const upload = incoming.get(id);
  incoming.delete(id);
  if (!upload) return fail('No archive arrived for this deploy', false);
  fs.closeSync(upload.fd);
  const digest = createHash('sha256').update(fs.readFileSync(upload.file)).digest('hex');
  if (digest !== commit.sha256) {
    fs.rmSync(upload.file, { force: true });
    return fail(`Checksum mismatch: got ${digest}, expected ${commit.sha256}`, false);
  }
  progress('verified', `archive ${digest.slice(0, 12)} verified`);
  const releaseDir = path.join(appDir, 'releases', commit.release);
  fs.rmSync(releaseDir, { recursive: true, force: true });
  fs.mkdirSync(releaseDir, { recursive: true });
  const env = { ...process.env, ...commit.env, PORT: String(commit.port) };
  const extract = await runShell(
    `tar -xzf ${JSON.stringify(upload.file)} -C ${JSON.stringify(releaseDir)}`,
    releaseDir,
    env,
    60_000,
  );
  fs.rmSync(upload.file, { force: true });
  if (extract.code !== 0) return fail(`Extracting failed: ${extract.output}`, false);
  if (commit.install) {
    progress('install', commit.install);
    const install = await runShell(commit.install, releaseDir, env, commit.installTimeoutMs);
    if (install.code !== 0) {
      return fail(`Install failed (exit ${install.code}): ${install.output.slice(-1000)}`, false);
    }
  }
  const before = appState();
  const next: AppState = {
    current: commit.release,
    previous: before.current,
    run: commit.run,
    port: commit.port,
    env: commit.env,
  };
  progress('start', commit.run);
  await supervisor?.stop();
  stopOrphan();
  supervisor = new Supervisor(commit.release, next);
  supervisor.start();
  if (await healthy(commit.port, commit.healthTimeoutMs, supervisor)) {
    writePrivate(stateFile, JSON.stringify(next));
    pruneReleases(next);
    send({ type: 'deploy-result', id, ok: true, rolledBack: false, release: commit.release });
    return;
  }
  // The new release does not answer: the previous one comes back.
  await supervisor.stop();
  const log = readText(path.join(appDir, 'app.log'))?.slice(-1000) ?? '';
  if (before.current && fs.existsSync(path.join(appDir, 'releases', before.current))) {
    supervisor = new Supervisor(before.current, before);
    supervisor.start();
    await healthy(before.port ?? commit.port, commit.healthTimeoutMs);
    return fail(`The new release did not answer on port ${commit.port}: ${log}`, true);
  }
  supervisor = undefined;
  return fail(`The new release did not answer on port ${commit.port}: ${log}`, false);
}

function pruneReleases(state: AppState): void {
  const keep = new Set([state.current, state.previous]);
  for (const name of fs.readdirSync(path.join(appDir, 'releases'))) {
    if (!keep.has(name)) fs.rmSync(path.join(appDir, 'releases', name), { recursive: true });
  }
}

// ---------------------------------------------------------------------------------------------
// Terminal: a shell on a pseudo-terminal (python3's pty when the machine has it, else pipes)

const ptys = new Map<string, ChildProcess>();

/**
 * python3 on a pseudo-terminal of the given size, relaying stdin/stdout; lines `rows cols` on
 * fd 3 resize it (the kernel then signals SIGWINCH to the shell).
 */
const PTY_SCRIPT = `
import fcntl, os, pty, select, struct, sys, termios
shell, rows, cols = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
pid, fd = pty.fork()
if pid == 0:
    os.execv(shell, [shell])
def size(r, c):
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack('HHHH', r, c, 0, 0))
size(rows, cols)
inputs, pending = [0, fd, 3], b''
while True:
    ready = select.select(inputs, [], [])[0]
    if fd in ready:
        try:
            data = os.read(fd, 65536)
        except OSError:
            data = b''
        if not data:
            break
        os.write(1, data)
    if 0 in ready:
        data = os.read(0, 65536)
        if data:
            os.write(fd, data)
        else:
            inputs.remove(0)
    if 3 in ready:
        data = os.read(3, 4096)
        if not data:
            inputs.remove(3)
        pending += data
        while b'\\n' in pending:
            line, pending = pending.split(b'\\n', 1)
            r, c = (int(x) for x in line.split())
            size(r, c)
_, status = os.waitpid(pid, 0)
sys.exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 1)
`;

function ptyResize(id: string, cols: number, rows: number): void {
  const control = ptys.get(id)?.stdio[3] as NodeJS.WritableStream | null | undefined;
  const ok = (n: number, max: number) => Number.isInteger(n) && n > 0 && n <= max;
  if (control && ok(cols, 500) && ok(rows, 200)) control.write(`${rows} ${cols}\n`);
}

function ptyOpen(id: string, cols: number, rows: number): void {
  const shell = fs.existsSync('/bin/bash') ? '/bin/bash' : '/bin/sh';
  const env = {
    ...process.env,
    TERM: 'xterm-256color',
    COLUMNS: String(cols),
    LINES: String(rows),
  };
  const python = ['/usr/bin/python3', '/usr/local/bin/python3'].find((p) => fs.existsSync(p));
  const child = python
    ? spawn(python, ['-c', PTY_SCRIPT, shell, String(rows), String(cols)], {
        env,
        cwd: os.homedir(),
        detached: true,
        stdio: ['pipe', 'pipe', 'pipe', 'pipe'],
      })
    : spawn(shell, ['-i'], { env, cwd: os.homedir(), detached: true, stdio: 'pipe' });
  ptys.set(id, child);
  const forward = (chunk: Buffer) => send({ type: 'pty-data', id, data: chunk.toString('utf8') });
  child.stdout?.on('data', forward);
  child.stderr?.on('data', forward);
  child.on('error', () => undefined);
  child.on('exit', (code) => {
    ptys.delete(id);
    send({ type: 'pty-exit', id, code });
  });
}

// ---------------------------------------------------------------------------------------------

function main(): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const state = appState();
  if (state.current && fs.existsSync(path.join(appDir, 'releases', state.current))) {
    stopOrphan();
    supervisor = new Supervisor(state.current, state);
    supervisor.start();
  }
  connect();
  const shutdown = () => {
    for (const r of running.values()) r.stop('canceled');
    socket?.close();
    setTimeout(() => process.exit(0), 200).unref();
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
}

main();
