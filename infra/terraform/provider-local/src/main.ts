/**
 * terraform-provider-vaporform: Terraform's plugin protocol 6 over gRPC, with go-plugin's
 * handshake. Terraform starts this process with TF_PLUGIN_MAGIC_COOKIE and PLUGIN_CLIENT_CERT;
 * it answers with one stdout line `1|6|tcp|127.0.0.1:PORT|grpc|<server cert>` and then serves
 * mutual TLS: its own self-signed certificate (base64 DER without padding on that line, as
 * go-plugin's AutoMTLS reads it) and only the client certificate Terraform handed over.
 */
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { providerHandlers } from './provider.ts';

const MAGIC_COOKIE_KEY = 'TF_PLUGIN_MAGIC_COOKIE';
const MAGIC_COOKIE_VALUE = 'd602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2';
const PROTO_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'proto');

/** A throwaway certificate for localhost, made by the openssl CLI (node cannot issue one). */
function selfSignedCertificate(): { cert: Buffer; key: Buffer } {
  const dir = mkdtempSync(path.join(tmpdir(), 'vf-provider-'));
  try {
    const certFile = path.join(dir, 'cert.pem');
    const keyFile = path.join(dir, 'key.pem');
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-days',
        '30',
        '-subj',
        '/O=Vaporform/CN=localhost',
        '-addext',
        'subjectAltName=DNS:localhost',
        '-addext',
        'basicConstraints=critical,CA:TRUE',
        '-addext',
        'keyUsage=critical,digitalSignature,keyEncipherment,keyAgreement,keyCertSign',
        '-addext',
        'extendedKeyUsage=serverAuth,clientAuth',
        '-keyout',
        keyFile,
        '-out',
        certFile,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    return { cert: readFileSync(certFile), key: readFileSync(keyFile) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function load(file: string): grpc.GrpcObject {
  const definition = protoLoader.loadSync(path.join(PROTO_DIR, file), {
    keepCase: true,
    longs: Number,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  return grpc.loadPackageDefinition(definition);
}

function service(root: grpc.GrpcObject, dotted: string): grpc.ServiceDefinition {
  let node: unknown = root;
  for (const part of dotted.split('.')) node = (node as Record<string, unknown>)[part];
  return (node as { service: grpc.ServiceDefinition }).service;
}

/** The parent's pid now (process.ppid is read once at start): /proc, else whether it lives. */
function currentParent(): number {
  try {
    // pid (comm) state ppid …: comm may hold spaces, so count from its closing parenthesis.
    const stat = readFileSync('/proc/self/stat', 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    try {
      process.kill(process.ppid, 0);
      return process.ppid;
    } catch {
      return 1;
    }
  }
}

async function main(): Promise<void> {
  if (process.env[MAGIC_COOKIE_KEY] !== MAGIC_COOKIE_VALUE) {
    process.stderr.write(
      'This binary is a Terraform plugin: Terraform starts it, people do not run it directly.\n',
    );
    process.exit(1);
  }
  const server = new grpc.Server();
  server.addService(
    service(load('tfplugin6.8.proto'), 'tfplugin6.Provider'),
    providerHandlers() as unknown as grpc.UntypedServiceImplementation,
  );
  const shutdown = (): void => {
    server.tryShutdown(() => process.exit(0));
    setTimeout(() => process.exit(0), 1000).unref();
  };
  server.addService(service(load('go-plugin.proto'), 'plugin.GRPCController'), {
    Shutdown: (_call: unknown, callback: grpc.sendUnaryData<object>) => {
      callback(null, {});
      setImmediate(shutdown);
    },
  });
  server.addService(service(load('health.proto'), 'grpc.health.v1.Health'), {
    Check: (_call: unknown, callback: grpc.sendUnaryData<object>) =>
      callback(null, { status: 'SERVING' }),
  });

  const clientCert = process.env.PLUGIN_CLIENT_CERT;
  let credentials = grpc.ServerCredentials.createInsecure();
  let certField = '';
  if (clientCert) {
    const { cert, key } = selfSignedCertificate();
    credentials = grpc.ServerCredentials.createSsl(
      Buffer.from(clientCert),
      [{ cert_chain: cert, private_key: key }],
      true,
    );
    certField = new X509Certificate(cert).raw.toString('base64').replace(/=+$/, '');
  }
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', credentials, (error, bound) =>
      error ? reject(error) : resolve(bound),
    ),
  );
  // Terraform sends SIGINT to the whole process group on cancel; it then asks for a graceful
  // stop through StopProvider and Shutdown, so the signal itself is ignored (as go-plugin does).
  process.on('SIGINT', () => undefined);
  // A Terraform that died without stopping us (SIGKILL, or a server killed mid-apply) leaves us
  // to init: then nothing will ever call us again, so we go too.
  const parent = process.ppid;
  setInterval(() => {
    if (currentParent() !== parent) process.exit(1);
  }, 1000).unref();
  process.stdout.write(`1|6|tcp|127.0.0.1:${port}|grpc|${certField}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`terraform-provider-vaporform: ${String(error)}\n`);
  process.exit(1);
});
