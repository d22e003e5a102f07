import { lookup } from 'node:dns/promises';
import { mkdtemp, rm } from 'node:fs/promises';
import {
  createServer,
  request,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { BlockList, connect, isIP, type Socket } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Duplex } from 'node:stream';
import type { Logger } from '../../common/logger.ts';

/**
 * Outbound traffic of sandboxed processes (which have a network namespace of their own, loopback
 * only): an HTTP proxy (CONNECT and absolute-URI requests) on a Unix socket that every sandbox
 * sees read-only at {@link EGRESS_SOCKET}; the forwarder inside the sandbox exposes it as
 * `http://127.0.0.1:3128` (HTTP(S)_PROXY, npm's proxy). It connects to the address it resolved
 * itself and refuses this host (loopback, its own addresses), link-local (cloud metadata),
 * unspecified and multicast addresses: `npm install` works, the API and the database do not.
 */

/** Where the egress proxy's socket appears inside a sandbox. */
export const EGRESS_SOCKET = '/run/vaporform/egress.sock';
/** The proxy's port on the sandbox's loopback. */
export const EGRESS_PORT = 3128;

/** Proxy variables for a sandbox's processes (the dev server and terminals). */
export function egressEnvironment(): Record<string, string> {
  const url = `http://127.0.0.1:${EGRESS_PORT}`;
  const noProxy = 'localhost,127.0.0.1,::1';
  return {
    HTTP_PROXY: url,
    HTTPS_PROXY: url,
    http_proxy: url,
    https_proxy: url,
    npm_config_proxy: url,
    npm_config_https_proxy: url,
    NO_PROXY: noProxy,
    no_proxy: noProxy,
  };
}

/** Addresses no project may reach through the proxy, whatever name led to them. */
function forbiddenAddresses(): BlockList {
  const list = new BlockList();
  list.addSubnet('0.0.0.0', 8, 'ipv4');
  list.addSubnet('127.0.0.0', 8, 'ipv4');
  list.addSubnet('169.254.0.0', 16, 'ipv4');
  list.addSubnet('224.0.0.0', 4, 'ipv4');
  list.addSubnet('240.0.0.0', 4, 'ipv4');
  list.addAddress('::', 'ipv6');
  list.addAddress('::1', 'ipv6');
  list.addSubnet('fe80::', 10, 'ipv6');
  list.addSubnet('ff00::', 8, 'ipv6');
  // This host, on every interface (the API may listen on all of them).
  for (const entries of Object.values(os.networkInterfaces())) {
    for (const entry of entries ?? []) {
      list.addAddress(entry.address.split('%')[0]!, entry.family === 'IPv6' ? 'ipv6' : 'ipv4');
    }
  }
  return list;
}

/** A mapped IPv4 address (`::ffff:a.b.c.d`) as IPv4, others unchanged. */
function unmapped(address: string): string {
  const match = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return match ? match[1]! : address;
}

/** True when projects may not reach `address` (an IP) through the egress proxy. */
export function egressForbidden(address: string, blocked = forbiddenAddresses()): boolean {
  const plain = unmapped(address);
  const family = isIP(plain);
  if (!family) return true;
  return blocked.check(plain, family === 6 ? 'ipv6' : 'ipv4');
}

export interface EgressProxyOptions {
  log: Logger;
  /** Overrides the address policy (tests): true when `address` may be reached. */
  allow?: (address: string) => boolean;
}

/** The egress proxy of one process runtime: `socketPath` on the host, until `close()`. */
export class EgressProxy {
  readonly #log: Logger;
  readonly #allow: ((address: string) => boolean) | undefined;
  #server: Server | undefined;
  #dir: string | undefined;
  readonly #sockets = new Set<Duplex>();

  constructor(options: EgressProxyOptions) {
    this.#log = options.log;
    this.#allow = options.allow;
  }

  /** The host path of the proxy's socket (bind it read-only into sandboxes). */
  get socketPath(): string | undefined {
    return this.#dir ? path.join(this.#dir, 'egress.sock') : undefined;
  }

  /** Listens on a fresh socket in a private (0700) directory. */
  async start(): Promise<void> {
    this.#dir = await mkdtemp(path.join(os.tmpdir(), 'vf-egress-'));
    const server = createServer((req, res) => {
      void this.#forwardRequest(req, res);
    });
    server.on('connect', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      void this.#tunnel(req, socket, head);
    });
    server.on('connection', (socket: Socket) => {
      this.#sockets.add(socket);
      socket.once('close', () => this.#sockets.delete(socket));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.socketPath, () => resolve());
    });
    this.#server = server;
  }

  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) =>
      this.#server ? this.#server.close(() => resolve()) : resolve(),
    );
    this.#server = undefined;
    if (this.#dir) await rm(this.#dir, { recursive: true, force: true });
    this.#dir = undefined;
  }

  /**
   * The address to connect to for `host`, resolved here once (no second lookup a rebinding DNS
   * answer could change).
   * @throws Error naming the host when it is, or resolves to, a forbidden address.
   */
  async #resolve(host: string): Promise<string> {
    const name = host.replace(/^\[|\]$/g, '');
    const addresses = isIP(name)
      ? [name]
      : (await lookup(name, { all: true, verbatim: true })).map((a) => a.address);
    const blocked = forbiddenAddresses();
    for (const raw of addresses) {
      const address = unmapped(raw);
      const allowed = this.#allow ? this.#allow(address) : !egressForbidden(address, blocked);
      if (!allowed) throw new Error(`${host} (${address}) is not reachable from projects`);
    }
    if (!addresses.length) throw new Error(`${host} does not resolve`);
    return unmapped(addresses[0]!);
  }

  async #tunnel(req: IncomingMessage, client: Duplex, head: Buffer): Promise<void> {
    client.on('error', () => client.destroy());
    const target = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(req.url ?? '');
    if (!target) return refuse(client, 400, 'CONNECT needs host:port');
    let address: string;
    try {
      address = await this.#resolve(target[1]!);
    } catch (err) {
      this.#log.info({ target: req.url, err: (err as Error).message }, 'egress refused');
      return refuse(client, 403, (err as Error).message);
    }
    const upstream = connect({ host: address, port: Number(target[2]) });
    upstream.once('connect', () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    upstream.on('error', (err) => {
      if (upstream.connecting) refuse(client, 502, err.message);
      else client.destroy();
    });
    client.once('close', () => upstream.destroy());
    upstream.once('close', () => client.destroy());
  }

  async #forwardRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let url: URL;
    try {
      url = new URL(req.url ?? '');
      if (url.protocol !== 'http:') throw new Error('only http:// URLs (use CONNECT for https)');
    } catch (err) {
      res.writeHead(400).end(`${(err as Error).message}\n`);
      return;
    }
    let address: string;
    try {
      address = await this.#resolve(url.hostname);
    } catch (err) {
      this.#log.info({ target: url.host, err: (err as Error).message }, 'egress refused');
      res.writeHead(403).end(`${(err as Error).message}\n`);
      return;
    }
    const headers: Record<string, string | string[] | undefined> = {
      ...req.headers,
      host: url.host,
    };
    delete headers['proxy-connection'];
    delete headers['proxy-authorization'];
    const upstream = request(
      {
        host: address,
        port: Number(url.port || 80),
        method: req.method,
        path: `${url.pathname}${url.search}`,
        headers,
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on('error', (err) => {
      if (!res.headersSent) res.writeHead(502).end(`${err.message}\n`);
      else res.destroy();
    });
    req.pipe(upstream);
  }
}

function refuse(client: Duplex, status: number, message: string): void {
  const text = { 400: 'Bad Request', 403: 'Forbidden', 502: 'Bad Gateway' }[status] ?? 'Error';
  client.end(
    `HTTP/1.1 ${status} ${text}\r\ncontent-type: text/plain\r\ncontent-length: ${
      Buffer.byteLength(message) + 1
    }\r\nconnection: close\r\n\r\n${message}\n`,
  );
}
