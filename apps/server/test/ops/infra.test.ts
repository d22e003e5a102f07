import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { parse, parseAllDocuments } from 'yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/db/index.ts';
import { createTestDatabase, type TestDatabase } from '../db.ts';
import { useTestDocker } from '../docker.ts';
import { until } from '../wait.ts';
import { buildRuntimeImage } from '../../src/services/containers/index.ts';
import { requireBinary, startServer } from '../topology/processes.ts';

// The deployment files, checked offline with the operators' own tools: Debian's docker-compose
// renders infra/compose.yaml and builds its server image (offline, from the local base) on the
// test engine, which then serves; kubectl's kustomize renders infra/k8s, haproxy checks its config.
// Every rendered Kubernetes object is validated against the Kubernetes OpenAPI schemas (the
// `kubernetes-models` package: validators generated from the API server's own OpenAPI document,
// run with ajv — types, required fields, enums, formats), strictly like `kubeconform -strict`:
// a field its schema does not declare is an error. Then the objects are checked against what
// would break Vaporform's shape there (server Deployment, one Docker engine, a shared data
// volume): selectors that pick exactly the server's or the engine's pods, the autoscaler and the
// disruption budget on the server, the engine's name, TLS files and network fence, the data dir
// at one path everywhere, names that resolve, configuration keys that the server knows. The
// engine's start script runs against a fake iptables, engine-certs.sh's certificates complete a
// mutual TLS handshake, and a real server starts with the ConfigMap's settings and no engine.

const root = path.resolve(import.meta.dirname, '../../../..');
const infra = path.join(root, 'infra');

function run(cmd: string, args: string[], env: Record<string, string> = {}) {
  return spawnSync(cmd, args, {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, ...env },
    timeout: 60_000,
  });
}

/** The variables config.ts reads (its zod schema's keys). */
function knownVariables(): Set<string> {
  const source = readFileSync(path.join(root, 'apps/server/src/config.ts'), 'utf8');
  const schema = source.slice(
    source.indexOf('const envSchema'),
    source.indexOf('});', source.indexOf('const envSchema')),
  );
  return new Set([...schema.matchAll(/^ {2}([A-Z][A-Z0-9_]+):/gm)].map((m) => m[1]!));
}

const composeEnv = {
  VAPORFORM_HOST: 'vaporform.example.test',
  POSTGRES_PASSWORD: 'compose-check',
  JWT_SECRET: randomBytes(24).toString('hex'),
  VAPORFORM_MASTER_KEY: randomBytes(32).toString('hex'),
};

describe('infra/compose.yaml', () => {
  it('docker-compose config renders two instances behind the proxy, sharing keys, data and engine', () => {
    requireBinary('docker-compose', 'docker-compose');
    const out = run('docker-compose', ['-f', 'infra/compose.yaml', 'config'], composeEnv);
    expect(out.status, out.stderr).toBe(0);
    const config = parse(out.stdout) as {
      services: Record<
        string,
        { environment?: Record<string, string>; volumes?: string[]; image?: string }
      >;
    };
    expect(Object.keys(config.services).sort()).toEqual([
      'postgres',
      'redis',
      'server-a',
      'server-b',
      'traefik',
    ]);
    const a = config.services['server-a']!;
    const b = config.services['server-b']!;
    expect([String(a.environment!.PORT), String(b.environment!.PORT)]).toEqual(['4000', '4001']);
    for (const key of ['JWT_SECRET', 'VAPORFORM_MASTER_KEY', 'DATABASE_URL', 'REDIS_URL']) {
      expect(a.environment![key]).toBeTruthy();
      expect(b.environment![key]).toBe(a.environment![key]);
    }
    expect(b.volumes).toEqual(a.volumes);
    expect(a.image).toBe(b.image);
    const known = knownVariables();
    for (const key of Object.keys(a.environment!)) expect(known, key).toContain(key);
    // The proxy's routes send the IDE's host and the preview wildcard to both instances.
    const dynamic = readFileSync(path.join(infra, 'traefik/dynamic.yaml'), 'utf8');
    expect(dynamic).toContain('http://127.0.0.1:4000');
    expect(dynamic).toContain('http://127.0.0.1:4001');
    expect(dynamic).toMatch(/HostRegexp\(`\^\[0-9a-f-\]\{36\}\\\.preview\\\./);
  });

  it('builds the server image offline (docker-compose build), and that image serves Vaporform', async () => {
    const { docker, dockerHost } = await useTestDocker();
    // The base from this machine's files (npm run runtime-image), then compose's own build.
    await buildRuntimeImage(docker, {
      variant: 'server',
      addonsFrom: path.join(root, 'node_modules'),
    });
    const build = spawnSync('docker-compose', ['-f', 'infra/compose.yaml', 'build', 'server-a'], {
      cwd: root,
      encoding: 'utf8',
      env: { ...process.env, ...composeEnv, DOCKER_HOST: dockerHost },
      timeout: 600_000,
    });
    expect(build.status, build.stdout.slice(-2000) + build.stderr.slice(-2000)).toBe(0);
    const image = await docker.getImage('vaporform/server:latest').inspect();
    const database = await createTestDatabase();
    const port = await freePort();
    const container = await docker.createContainer({
      Image: 'vaporform/server:latest',
      Env: [
        `DATABASE_URL=${database.url}`,
        `PORT=${port}`,
        'HOST=127.0.0.1',
        'VAPORFORM_RUNTIME=process',
        'LOG_LEVEL=warn',
      ],
      HostConfig: { NetworkMode: 'host' },
    });
    try {
      await container.start();
      const base = `http://127.0.0.1:${port}`;
      await until(
        async () => (await fetch(`${base}/readyz`).catch(() => undefined))?.ok,
        60_000,
        'the server in the image to be ready',
        250,
      );
      // The IDE (built web), and an account: the native password hashing loads in the image.
      expect(await (await fetch(`${base}/`)).text()).toContain('<div id="root">');
      const registered = await fetch(`${base}/api/auth/register`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          email: 'image@example.test',
          password: 'a long enough password',
          name: 'Image',
        }),
      });
      expect(registered.status).toBe(201);
      const listing = spawnSync('docker', ['run', '--rm', image.Id, 'ls', '-a', '/opt/vaporform'], {
        encoding: 'utf8',
        env: { ...process.env, DOCKER_HOST: dockerHost },
      });
      expect(listing.stdout.split('\n')).not.toContain('.git');
      expect(listing.stdout.split('\n')).toContain('node_modules');
      // The rule the server installs to keep project containers off the host (compose gives
      // it NET_ADMIN): iptables and its conntrack extension work in the image.
      const rule = [
        'iptables -w -N VAPORFORM-HOST',
        'iptables -w -A VAPORFORM-HOST -m conntrack --ctstate ESTABLISHED,RELATED -j RETURN',
        'iptables -w -A VAPORFORM-HOST -j DROP',
        'iptables -w -I INPUT 1 -i vf+ -j VAPORFORM-HOST',
        'iptables -w -S',
      ].join(' && ');
      const iptables = spawnSync(
        'docker',
        ['run', '--rm', '--cap-add', 'NET_ADMIN', image.Id, 'sh', '-c', rule],
        { encoding: 'utf8', env: { ...process.env, DOCKER_HOST: dockerHost } },
      );
      expect(iptables.stdout, iptables.stderr).toContain(
        '-A VAPORFORM-HOST -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN',
      );
      expect(iptables.stdout).toContain('-A INPUT -i vf+ -j VAPORFORM-HOST');
    } finally {
      await container.remove({ force: true }).catch(() => undefined);
      // About a gigabyte: not kept on the test engine between runs.
      await docker
        .getImage(image.Id)
        .remove({ force: true })
        .catch(() => undefined);
      await database.drop();
    }
  }, 900_000);

  it('refuses to render without the shared keys, naming them', () => {
    const out = run('docker-compose', ['-f', 'infra/compose.yaml', 'config'], {
      ...composeEnv,
      JWT_SECRET: '',
    });
    expect(out.status).not.toBe(0);
    expect(out.stderr).toMatch(/JWT_SECRET/);
  });
});

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  spec?: any;
  data?: Record<string, string>;
  stringData?: Record<string, string>;
}

const apiVersions: Record<string, string> = {
  ConfigMap: 'v1',
  Secret: 'v1',
  Service: 'v1',
  PersistentVolumeClaim: 'v1',
  Deployment: 'apps/v1',
  StatefulSet: 'apps/v1',
  HorizontalPodAutoscaler: 'autoscaling/v2',
  PodDisruptionBudget: 'policy/v1',
  Ingress: 'networking.k8s.io/v1',
  NetworkPolicy: 'networking.k8s.io/v1',
};

function render(overlay: string): K8sObject[] {
  requireBinary('kubectl', 'kubernetes-client');
  const out = run('kubectl', ['kustomize', `infra/k8s/overlays/${overlay}`]);
  expect(out.status, out.stderr).toBe(0);
  return parseAllDocuments(out.stdout).map((d) => d.toJS() as K8sObject);
}

/** The rendered object of that kind and name. @throws Error when there is none. */
function named(objects: K8sObject[], kind: string, name: string): K8sObject {
  const found = objects.find((o) => o.kind === kind && o.metadata.name === name);
  if (!found) throw new Error(`no ${kind} ${name} among the rendered objects`);
  return found;
}

/** An overlay's objects by the part each plays. */
function installation(overlay: string) {
  const objects = render(overlay);
  const get = (kind: string, name: string) => named(objects, kind, name);
  return {
    objects,
    config: get('ConfigMap', 'vaporform-config'),
    secrets: get('Secret', 'vaporform-secrets'),
    data: get('PersistentVolumeClaim', 'vaporform-data'),
    server: get('Deployment', 'vaporform'),
    service: get('Service', 'vaporform'),
    ingress: get('Ingress', 'vaporform'),
    collabService: get('Service', 'vaporform-collab'),
    collabIngress: get('Ingress', 'vaporform-collab'),
    hpa: get('HorizontalPodAutoscaler', 'vaporform'),
    pdb: get('PodDisruptionBudget', 'vaporform'),
    engine: get('StatefulSet', 'vaporform-engine'),
    engineService: get('Service', 'vaporform-engine'),
    engineServerTls: get('Secret', 'vaporform-engine-server'),
    engineClientTls: get('Secret', 'vaporform-engine-client'),
    enginePolicy: get('NetworkPolicy', 'vaporform-engine'),
  };
}

interface SchemaValidator {
  (data: unknown): boolean;
  errors?: { instancePath: string; keyword: string; params: unknown }[] | null;
}

/**
 * The compiled OpenAPI validator `kubernetes-models` ships for an apiVersion and kind
 * (`apps/v1` StatefulSet → `_schemas/IoK8sApiAppsV1StatefulSet`), or undefined for a kind it
 * does not know.
 */
async function schemaOf(apiVersion: string, kind: string): Promise<SchemaValidator | undefined> {
  const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : ['core', apiVersion];
  const word = (w: string) => w[0]!.toUpperCase() + w.slice(1);
  const name = `IoK8sApi${word(group!.split('.')[0]!)}${word(version!)}${kind}`;
  try {
    const module = (await import(`kubernetes-models/_schemas/${name}`)) as {
      validate: SchemaValidator;
    };
    return module.validate;
  } catch {
    return undefined;
  }
}

/**
 * The schema errors of `o` ([] when valid), strict like `kubeconform -strict`: besides types,
 * required fields and enums, every field must be one its schema declares. The validator runs on
 * a view of `o` that records, per object, the fields the schema looked up by name and whether it
 * went through all keys (a map: labels, annotations, data, resources); any other key is unknown.
 */
async function schemaErrors(o: K8sObject): Promise<string[]> {
  const validate = await schemaOf(o.apiVersion, o.kind);
  if (!validate) return [`no schema for ${o.apiVersion} ${o.kind}`];
  const looked = new Map<object, Set<string>>();
  const enumerated = new Set<object>();
  const views = new WeakMap<object, object>();
  const view = (value: unknown): unknown => {
    if (typeof value !== 'object' || value === null) return value;
    let proxy = views.get(value);
    if (!proxy) {
      const names = new Set<string>();
      if (!Array.isArray(value)) looked.set(value, names);
      const note = (key: string | symbol) => {
        if (typeof key === 'string') names.add(key);
      };
      proxy = new Proxy(value, {
        get: (target, key) => (note(key), view(Reflect.get(target, key))),
        has: (target, key) => (note(key), Reflect.has(target, key)),
        ownKeys: (target) => (enumerated.add(target), Reflect.ownKeys(target)),
      });
      views.set(value, proxy);
    }
    return proxy;
  };
  const errors = validate(view(o))
    ? []
    : (validate.errors ?? []).map(
        (e) => `${e.instancePath || '/'}: ${e.keyword} ${JSON.stringify(e.params)}`,
      );
  const walk = (value: unknown, at: string): void => {
    if (typeof value !== 'object' || value === null) return;
    if (Array.isArray(value)) return value.forEach((item, i) => walk(item, `${at}/${i}`));
    const names = looked.get(value);
    if (!names) return; // the schema never reached it: under a field already reported
    for (const [key, child] of Object.entries(value)) {
      if (!enumerated.has(value) && !names.has(key)) errors.push(`${at}/${key}: unknown field`);
      else walk(child, `${at}/${key}`);
    }
  };
  walk(o, '');
  return errors;
}

function matches(selector: Record<string, string>, labels: Record<string, string>): boolean {
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

interface Container {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  env?: { name: string; value?: string }[];
  ports?: { name: string; containerPort: number }[];
  startupProbe?: { exec?: { command: string[] } };
  livenessProbe?: { exec?: { command: string[] } };
  securityContext?: {
    privileged?: boolean;
    runAsNonRoot?: boolean;
    allowPrivilegeEscalation?: boolean;
    capabilities?: { drop?: string[] };
  };
  volumeMounts: { name: string; mountPath: string; readOnly?: boolean }[];
}

interface Volume {
  name: string;
  secret?: { secretName: string };
  persistentVolumeClaim?: { claimName: string };
  configMap?: { name: string };
}

/** A Deployment's or StatefulSet's pod: its labels, containers and volumes. */
function podOf(workload: K8sObject) {
  const spec = workload.spec.template.spec;
  return {
    labels: workload.spec.template.metadata.labels as Record<string, string>,
    containers: spec.containers as Container[],
    initContainers: (spec.initContainers ?? []) as Container[],
    volumes: (spec.volumes ?? []) as Volume[],
  };
}

/** The mount in `container` of the pod volume that `volume` picks, if any. */
function mountOf(
  pod: ReturnType<typeof podOf>,
  container: Container,
  volume: (v: Volume) => boolean,
): { name: string; mountPath: string; readOnly?: boolean } | undefined {
  const name = pod.volumes.find(volume)?.name;
  return container.volumeMounts.find((m) => m.name === name);
}

/** `--flag=value` or `--flag value` in a command line. */
function flag(args: string[], name: string): string[] {
  return args.flatMap((a, i) =>
    a.startsWith(`${name}=`) ? [a.slice(name.length + 1)] : a === name ? [args[i + 1]!] : [],
  );
}

/** The engine's pod address and port in DOCKER_HOST (`tcp://host:port`). */
function dockerHostOf(config: Record<string, string>): { host: string; port: number } {
  const url = new URL(config.DOCKER_HOST!.replace(/^tcp:/, 'http:'));
  return { host: url.hostname, port: Number(url.port) };
}

const privateRanges = [
  '10.0.0.0/8',
  '172.16.0.0/12',
  '192.168.0.0/16',
  '100.64.0.0/10',
  '169.254.0.0/16',
];

describe.each(['staging', 'production'])('infra/k8s overlay %s (kubectl kustomize)', (overlay) => {
  it('renders each object with a known apiVersion/kind, a DNS name, its namespace and the required fields', () => {
    const objects = render(overlay);
    expect(objects.map((o) => `${o.kind} ${o.metadata.name}`).sort()).toEqual([
      'ConfigMap vaporform-config',
      'Deployment vaporform',
      'HorizontalPodAutoscaler vaporform',
      'Ingress vaporform',
      'Ingress vaporform-collab',
      'NetworkPolicy vaporform-engine',
      'PersistentVolumeClaim vaporform-data',
      'PodDisruptionBudget vaporform',
      'Secret vaporform-engine-client',
      'Secret vaporform-engine-server',
      'Secret vaporform-secrets',
      'Service vaporform',
      'Service vaporform-collab',
      'Service vaporform-engine',
      'StatefulSet vaporform-engine',
    ]);
    for (const o of objects) {
      expect(o.apiVersion, o.kind).toBe(apiVersions[o.kind]);
      expect(o.metadata.name).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
      expect(o.metadata.namespace).toBe(
        overlay === 'production' ? 'vaporform' : 'vaporform-staging',
      );
      expect(o.metadata.labels?.['app.kubernetes.io/name'], o.kind).toBe('vaporform');
      if (!['ConfigMap', 'Secret'].includes(o.kind)) expect(o.spec, o.kind).toBeTypeOf('object');
    }
  });

  it('every object is valid against the Kubernetes OpenAPI schema of its kind, unknown fields refused', async () => {
    const objects = render(overlay);
    for (const o of objects) {
      expect(await schemaErrors(o), `${o.kind} ${o.metadata.name}`).toEqual([]);
    }
    // Maps take any key (labels, annotations, data); a kind without a schema is an error.
    expect(named(objects, 'Service', 'vaporform').metadata.annotations).toHaveProperty([
      'prometheus.io/scrape',
    ]);
    expect(await schemaErrors({ ...objects[0]!, kind: 'Widget' })).toEqual([
      'no schema for v1 Widget',
    ]);

    // The validator refuses what an API server would: a port as a word, a path without its
    // pathType, a replica count as a string, a probe without a handler's port, an autoscaler
    // without its target, access modes as a word, an IP block without its CIDR.
    const broken = structuredClone(objects);
    const get = (kind: string, name: string) => named(broken, kind, name);
    get('Deployment', 'vaporform').spec.replicas = 'two';
    get('Deployment', 'vaporform').spec.template.spec.containers[0].readinessProbe.httpGet.port =
      undefined;
    delete get('Ingress', 'vaporform').spec.rules[0].http.paths[0].pathType;
    get('Service', 'vaporform').spec.ports[0].port = 'http';
    delete get('HorizontalPodAutoscaler', 'vaporform').spec.scaleTargetRef;
    get('PersistentVolumeClaim', 'vaporform-data').spec.accessModes = 'ReadWriteMany';
    delete get('NetworkPolicy', 'vaporform-engine').spec.egress[1].to[0].ipBlock.cidr;
    for (const [kind, name] of [
      ['Deployment', 'vaporform'],
      ['Ingress', 'vaporform'],
      ['Service', 'vaporform'],
      ['HorizontalPodAutoscaler', 'vaporform'],
      ['PersistentVolumeClaim', 'vaporform-data'],
      ['NetworkPolicy', 'vaporform-engine'],
    ] as const) {
      expect(await schemaErrors(get(kind, name)), kind).not.toEqual([]);
    }

    // …and, like `kubeconform -strict`, a misspelled field, at any depth, which kubectl apply
    // would drop with a warning (a probe that silently never runs).
    const server = structuredClone(named(objects, 'Deployment', 'vaporform'));
    const container = server.spec.template.spec.containers[0];
    container.livenessprobe = container.livenessProbe;
    delete container.livenessProbe;
    container.readinessProbe.httpGett = container.readinessProbe.httpGet;
    server.metadata.annotations = { 'any.example.com/key': 'fine' };
    expect((await schemaErrors(server)).sort()).toEqual([
      '/spec/template/spec/containers/0/livenessprobe: unknown field',
      '/spec/template/spec/containers/0/readinessProbe/httpGett: unknown field',
    ]);
    const engine = structuredClone(named(objects, 'StatefulSet', 'vaporform-engine'));
    engine.spec.template.spec.containers[0].securityContext.priviledged = true;
    engine.spec.volumeClaimTemplates[0].spec.accesModes = ['ReadWriteOnce'];
    expect((await schemaErrors(engine)).sort()).toEqual([
      '/spec/template/spec/containers/0/securityContext/priviledged: unknown field',
      '/spec/volumeClaimTemplates/0/spec/accesModes: unknown field',
    ]);
  });

  it('wires the server: selectors match, probes on /healthz and /readyz, every name resolves', () => {
    const { objects, config, secrets, server, service, ingress, engine, engineService } =
      installation(overlay);
    const pod = podOf(server);
    expect(matches(server.spec.selector.matchLabels, pod.labels)).toBe(true);
    const [container] = pod.containers;
    expect(container!.image).toMatch(/^registry\.example\.com\/vaporform\/server:/);
    const probes = server.spec.template.spec.containers[0];
    expect(probes.readinessProbe.httpGet.path).toBe('/readyz');
    expect(probes.livenessProbe.httpGet.path).toBe('/healthz');
    expect(probes.startupProbe.httpGet.path).toBe('/healthz');
    const portNames = container!.ports!.map((p) => p.name);
    expect(probes.envFrom).toEqual([
      { configMapRef: { name: config.metadata.name } },
      { secretRef: { name: secrets.metadata.name } },
    ]);
    // Every key is a variable the server reads; the container listens where the Service sends.
    const known = knownVariables();
    for (const key of [...Object.keys(config.data!), ...Object.keys(secrets.stringData!)]) {
      expect(known, key).toContain(key);
    }
    expect(config.data!.PORT).toBe(String(container!.ports![0]!.containerPort));
    expect(config.data!.HOST).toBe('0.0.0.0');
    expect(matches(service.spec.selector, pod.labels)).toBe(true);
    for (const p of service.spec.ports) expect(portNames).toContain(p.targetPort);

    const hosts = (ingress.spec.rules as { host: string }[]).map((r) => r.host);
    expect(hosts).toHaveLength(2);
    expect(hosts[1]).toBe(`*.preview.${hosts[0]}`);
    expect(new URL(config.data!.VAPORFORM_PUBLIC_URL!).hostname).toBe(hosts[0]);
    for (const rule of ingress.spec.rules) {
      for (const p of rule.http.paths) {
        expect(p.backend.service.name).toBe(service.metadata.name);
        expect(service.spec.ports.map((x: { name: string }) => x.name)).toContain(
          p.backend.service.port.name,
        );
      }
    }
    expect(ingress.spec.tls[0].hosts).toEqual(hosts);

    // The engine: its StatefulSet governed by its Service, its pods selected by its own labels.
    expect(matches(engine.spec.selector.matchLabels, podOf(engine).labels)).toBe(true);
    expect(engine.spec.serviceName).toBe(engineService.metadata.name);
    // Every volume names an object that exists; every mount names a volume of its pod.
    for (const workload of [server, engine]) {
      const { volumes, containers, initContainers } = podOf(workload);
      for (const v of volumes) {
        if (v.secret) named(objects, 'Secret', v.secret.secretName);
        if (v.persistentVolumeClaim) {
          named(objects, 'PersistentVolumeClaim', v.persistentVolumeClaim.claimName);
        }
        if (v.configMap) named(objects, 'ConfigMap', v.configMap.name);
      }
      const claims = (workload.spec.volumeClaimTemplates ?? []).map(
        (t: K8sObject) => t.metadata.name,
      );
      const volumeNames = [...volumes.map((v) => v.name), ...claims];
      for (const c of [...containers, ...initContainers]) {
        for (const m of c.volumeMounts)
          expect(volumeNames, `${c.name}: ${m.name}`).toContain(m.name);
      }
    }
  });

  it("sends each project's collaboration sockets to one server pod (hash of ?project=)", () => {
    const { ingress, collabIngress, collabService, service } = installation(overlay);
    // Only WS /api/collab, on the IDE's host, to a Service of its own (ingress-nginx balances
    // per Service, so the hash applies there only); everything else stays round robin.
    expect(collabIngress.metadata.annotations).toMatchObject({
      'nginx.ingress.kubernetes.io/upstream-hash-by': '$arg_project',
    });
    expect(ingress.metadata.annotations).not.toHaveProperty([
      'nginx.ingress.kubernetes.io/upstream-hash-by',
    ]);
    expect(collabIngress.spec.rules).toEqual([
      {
        host: ingress.spec.rules[0].host,
        http: {
          paths: [
            {
              path: '/api/collab',
              pathType: 'Exact',
              backend: { service: { name: 'vaporform-collab', port: { name: 'http' } } },
            },
          ],
        },
      },
    ]);
    expect(collabIngress.spec.tls[0].hosts).toEqual([ingress.spec.rules[0].host]);
    expect(collabService.spec.selector).toEqual(service.spec.selector);
    expect(collabService.spec.ports).toEqual(service.spec.ports);
  });

  it('scales the server alone: an unprivileged Deployment without a sidecar, its HPA and PDB, Services that never mix server and engine pods', () => {
    const { server, service, collabService, hpa, pdb, engine, engineService } =
      installation(overlay);
    const serverPod = podOf(server);
    const enginePod = podOf(engine);
    expect(server.kind).toBe('Deployment');
    expect(serverPod.containers.map((c) => c.name)).toEqual(['server']);
    expect(serverPod.initContainers).toEqual([]);
    const [container] = serverPod.containers;
    expect(container!.securityContext).toMatchObject({
      runAsNonRoot: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
    });
    expect(container!.securityContext?.privileged).toBeUndefined();
    // A rolling update never takes a ready pod away before its replacement answers.
    expect(server.spec.strategy.rollingUpdate.maxUnavailable).toBe(0);

    expect(hpa.spec.scaleTargetRef).toEqual({
      apiVersion: server.apiVersion,
      kind: server.kind,
      name: server.metadata.name,
    });
    expect(hpa.spec.minReplicas).toBeGreaterThanOrEqual(2);
    expect(hpa.spec.maxReplicas).toBeGreaterThan(hpa.spec.minReplicas);
    expect(server.spec.replicas).toBe(hpa.spec.minReplicas);
    // The PDB keeps server pods through a drain, and still lets a drain proceed at the minimum.
    expect(pdb.spec.minAvailable).toBeLessThan(hpa.spec.minReplicas);

    // Each selector picks the pods it means and not the others'.
    const serverSelectors = {
      'Service vaporform': service.spec.selector,
      'Service vaporform-collab': collabService.spec.selector,
      'PodDisruptionBudget vaporform': pdb.spec.selector.matchLabels,
      'Deployment vaporform': server.spec.selector.matchLabels,
      'its topology spread':
        server.spec.template.spec.topologySpreadConstraints[0].labelSelector.matchLabels,
    };
    for (const [what, selector] of Object.entries(serverSelectors)) {
      expect(matches(selector, serverPod.labels), what).toBe(true);
      expect(matches(selector, enginePod.labels), what).toBe(false);
    }
    for (const selector of [engineService.spec.selector, engine.spec.selector.matchLabels]) {
      expect(matches(selector, enginePod.labels)).toBe(true);
      expect(matches(selector, serverPod.labels)).toBe(false);
    }
  });

  it('drives one Docker engine over mutual TLS at the stable name in DOCKER_HOST', () => {
    const { config, server, engine, engineService, engineServerTls, engineClientTls } =
      installation(overlay);
    const env = config.data!;
    expect(env.VAPORFORM_RUNTIME).toBe('docker');
    // One engine, its pod named by StatefulSet and headless Service: <name>-0.<service>.
    expect(engine.spec.replicas).toBe(1);
    expect(engineService.spec.clusterIP).toBe('None');
    const { host, port } = dockerHostOf(env);
    expect(env.DOCKER_HOST).toMatch(/^tcp:\/\//);
    expect(host).toBe(`${engine.metadata.name}-0.${engineService.metadata.name}`);
    expect(host).toBe('vaporform-engine-0.vaporform-engine'); // engine-certs.sh's name
    expect(env.VAPORFORM_DOCKER_PORTS_HOST).toBe(host);
    const enginePod = podOf(engine);
    const [dind] = enginePod.containers;
    expect(dind!.image).toMatch(/^docker:\d+-dind$/);
    expect(dind!.securityContext?.privileged).toBe(true);
    const servicePort = engineService.spec.ports.find((p: { name: string }) => p.name === 'docker');
    expect(servicePort.port).toBe(port);
    expect(dind!.ports).toContainEqual({ name: servicePort.targetPort, containerPort: port });

    // dockerd: TLS with client certificates on the network, only a Unix socket besides.
    const args = dind!.args!;
    expect(args[0]).toBe('dockerd');
    expect(args).toContain('--tlsverify');
    const listeners = [...flag(args, '--host'), ...flag(args, '-H')];
    expect(listeners.filter((l) => !l.startsWith('unix://'))).toEqual([`tcp://0.0.0.0:${port}`]);
    expect(dind!.env).toContainEqual({ name: 'DOCKER_TLS_CERTDIR', value: '' });
    // The probes ask dockerd on that socket.
    for (const probe of [dind!.startupProbe, dind!.livenessProbe]) {
      const command = probe!.exec!.command;
      expect(listeners).toContain(command[command.indexOf('-H') + 1]);
    }
    // Its certificates are files of the server Secret, mounted read-only.
    const serverTlsMount = mountOf(
      enginePod,
      dind!,
      (v) => v.secret?.secretName === engineServerTls.metadata.name,
    );
    expect(serverTlsMount?.readOnly).toBe(true);
    for (const name of ['--tlscacert', '--tlscert', '--tlskey']) {
      const [file] = flag(args, name);
      expect(file, name).toBeDefined();
      expect(path.dirname(file!), name).toBe(serverTlsMount!.mountPath);
      expect(Object.keys(engineServerTls.stringData!), name).toContain(path.basename(file!));
    }
    // The server's client certificate: Docker's file names, at DOCKER_CERT_PATH.
    expect(env.DOCKER_TLS_VERIFY).toBe('1');
    const serverPod = podOf(server);
    const clientTlsMount = mountOf(
      serverPod,
      serverPod.containers[0]!,
      (v) => v.secret?.secretName === engineClientTls.metadata.name,
    );
    expect(clientTlsMount).toMatchObject({ mountPath: env.DOCKER_CERT_PATH, readOnly: true });
    for (const tls of [engineServerTls, engineClientTls]) {
      expect(Object.keys(tls.stringData!).sort()).toEqual(['ca.pem', 'cert.pem', 'key.pem']);
    }
  });

  it('shares the data dir on a ReadWriteMany volume at VAPORFORM_DATA_DIR in the server and the engine', () => {
    const { config, data, server, engine } = installation(overlay);
    const env = config.data!;
    expect(data.spec.accessModes).toEqual(['ReadWriteMany']);
    // The engine resolves the workspaces' bind mounts by path: the same path in both.
    for (const workload of [server, engine]) {
      const pod = podOf(workload);
      const mount = mountOf(
        pod,
        pod.containers[0]!,
        (v) => v.persistentVolumeClaim?.claimName === data.metadata.name,
      );
      expect(mount?.mountPath, workload.kind).toBe(env.VAPORFORM_DATA_DIR);
    }
    // Writes made by containers on the engine's node are not inotify events on a server's node.
    expect(env.VAPORFORM_WORKSPACE_WATCH).toBe('poll');
    // The warm pool needs root on the engine's host.
    expect(env.VAPORFORM_WARM_POOL_SIZE).toBe('0');
    // The engine's own storage is its own volume, kept across restarts.
    const [storage] = engine.spec.volumeClaimTemplates;
    expect(storage.spec.accessModes).toEqual(['ReadWriteOnce']);
    expect(podOf(engine).containers[0]!.volumeMounts).toContainEqual({
      name: storage.metadata.name,
      mountPath: '/var/lib/docker',
    });
  });

  it('fences the engine in: only server pods reach it, it reaches no private or link-local address', () => {
    const { server, engine, enginePolicy } = installation(overlay);
    const serverLabels = podOf(server).labels;
    const engineLabels = podOf(engine).labels;
    const spec = enginePolicy.spec;
    expect(matches(spec.podSelector.matchLabels, engineLabels)).toBe(true);
    expect(matches(spec.podSelector.matchLabels, serverLabels)).toBe(false);
    expect(spec.policyTypes.sort()).toEqual(['Egress', 'Ingress']);
    // In: one rule, from server pods of this namespace, every port (dev servers' are random).
    expect(spec.ingress).toHaveLength(1);
    const [from] = spec.ingress[0].from;
    expect(spec.ingress[0].from).toHaveLength(1);
    expect(Object.keys(from)).toEqual(['podSelector']);
    expect(matches(from.podSelector.matchLabels, serverLabels)).toBe(true);
    expect(matches(from.podSelector.matchLabels, engineLabels)).toBe(false);
    expect(spec.ingress[0].ports).toBeUndefined();
    // Out: DNS, and otherwise only addresses outside every private, shared and link-local range.
    const dns = spec.egress.filter(
      (r: { ports?: { port: number }[] }) => r.ports?.length && r.ports.every((p) => p.port === 53),
    );
    expect(
      dns.flatMap((r: { ports: { protocol: string }[] }) => r.ports.map((p) => p.protocol)),
    ).toEqual(['UDP', 'TCP']);
    const others = spec.egress.filter((r: unknown) => !dns.includes(r));
    expect(others.length).toBeGreaterThan(0);
    for (const rule of others) {
      expect(rule.to?.length, JSON.stringify(rule)).toBeGreaterThan(0);
      for (const peer of rule.to) {
        expect(Object.keys(peer)).toEqual(['ipBlock']);
        expect(peer.ipBlock.cidr).toBe('0.0.0.0/0');
        expect(peer.ipBlock.except).toEqual(expect.arrayContaining(privateRanges));
      }
    }
  });

  it('installs the VAPORFORM-HOST rule once, before it hands over to dockerd', () => {
    const { engine } = installation(overlay);
    const [dind] = podOf(engine).containers;
    // The container's own command line, on a fake iptables that keeps its rules in a file and
    // a fake image entrypoint that records what it was given.
    const dir = mkdtempSync(path.join(tmpdir(), 'vf-engine-start-'));
    const calls = path.join(dir, 'calls');
    const state = path.join(dir, 'rules');
    writeFileSync(state, '');
    writeFileSync(
      path.join(dir, 'iptables'),
      `#!/bin/sh
echo "iptables $*" >> "$CALLS"
[ "$1" = -w ] && shift
op=$1; shift
case "$op" in
  -nL) ;;
  -S) grep -qxF "chain $1" "$RULES" ;;
  -N) echo "chain $1" >> "$RULES" ;;
  -C) grep -qxF "rule $*" "$RULES" ;;
  -A) echo "rule $*" >> "$RULES" ;;
  -I) chain=$1; shift 2; echo "rule $chain $*" >> "$RULES" ;;
  *) echo "unexpected iptables $op" >&2; exit 2 ;;
esac
`,
      { mode: 0o755 },
    );
    writeFileSync(
      path.join(dir, 'dockerd-entrypoint.sh'),
      '#!/bin/sh\necho "exec $*" >> "$CALLS"\n',
      {
        mode: 0o755,
      },
    );
    const start = () => {
      writeFileSync(calls, '');
      const [command, ...rest] = [...dind!.command!, ...dind!.args!];
      const out = spawnSync(command!, rest, {
        encoding: 'utf8',
        env: { PATH: `${dir}:${process.env.PATH}`, CALLS: calls, RULES: state },
      });
      expect(out.status, out.stderr).toBe(0);
      return readFileSync(calls, 'utf8').trim().split('\n');
    };
    const first = start();
    expect(readFileSync(state, 'utf8').trim().split('\n')).toEqual([
      'chain VAPORFORM-HOST',
      'rule VAPORFORM-HOST -m conntrack --ctstate ESTABLISHED,RELATED -j RETURN',
      'rule VAPORFORM-HOST -j DROP',
      'rule INPUT -i vf+ -j VAPORFORM-HOST',
    ]);
    // The jump is INPUT's first rule, and dockerd starts last, with the manifest's arguments.
    expect(first).toContain('iptables -w -I INPUT 1 -i vf+ -j VAPORFORM-HOST');
    expect(first.at(-1)).toBe(`exec ${dind!.args!.join(' ')}`);
    expect(first.slice(0, -1).every((c) => c.startsWith('iptables -w '))).toBe(true);
    // A restarted container checks and adds nothing.
    const again = start();
    expect(readFileSync(state, 'utf8').trim().split('\n')).toHaveLength(4);
    expect(again.filter((c) => / -[NAI] /.test(c))).toEqual([]);
    expect(again.at(-1)).toBe(first.at(-1));
  });
});

/** Runs infra/k8s/engine-certs.sh into `dir` with extra subjectAltName entries. */
function engineCerts(dir: string, ...names: string[]): void {
  const out = run('bash', ['infra/k8s/engine-certs.sh', dir, ...names]);
  expect(out.status, out.stderr).toBe(0);
}

function openssl(...args: string[]) {
  requireBinary('openssl', 'openssl');
  return run('openssl', args);
}

/**
 * A TLS handshake as dockerd --tlsverify (server certificate, client certificate required)
 * and a server with DOCKER_CERT_PATH make it, on loopback: resolves with the name the engine
 * saw on the client certificate, rejects with the client's error.
 */
async function handshake(certs: string, servername: string): Promise<string> {
  const read = (side: string, file: string) => readFileSync(path.join(certs, side, file));
  const server = tls.createServer({
    ca: read('server', 'ca.pem'),
    cert: read('server', 'cert.pem'),
    key: read('server', 'key.pem'),
    requestCert: true,
    rejectUnauthorized: true,
  });
  const seen = new Promise<string>((resolve) =>
    server.on('secureConnection', (socket) => {
      resolve(String(socket.getPeerCertificate().subject.CN));
      socket.end();
    }),
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const { port } = server.address() as AddressInfo;
    await new Promise<void>((resolve, reject) => {
      const socket = tls.connect({
        host: '127.0.0.1',
        port,
        servername,
        ca: read('client', 'ca.pem'),
        cert: read('client', 'cert.pem'),
        key: read('client', 'key.pem'),
      });
      socket.on('secureConnect', () => (socket.end(), resolve()));
      socket.on('error', reject);
    });
    return await seen;
  } finally {
    server.close();
  }
}

describe('infra/k8s/engine-certs.sh', () => {
  it('writes one CA, a server certificate for the engine names and a client certificate, keys private', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'vf-engine-certs-'));
    engineCerts(dir, 'IP:127.0.0.1');
    for (const side of ['server', 'client']) {
      const at = (file: string) => path.join(dir, side, file);
      const verified = openssl('verify', '-CAfile', at('ca.pem'), at('cert.pem'));
      expect(verified.status, verified.stderr).toBe(0);
      expect(statSync(at('key.pem')).mode & 0o777, `${side}/key.pem`).toBe(0o600);
    }
    expect(readFileSync(path.join(dir, 'client/ca.pem'))).toEqual(
      readFileSync(path.join(dir, 'server/ca.pem')),
    );
    const extensions = (side: string) => {
      const out = openssl(
        'x509',
        '-in',
        path.join(dir, side, 'cert.pem'),
        '-noout',
        '-ext',
        'subjectAltName,extendedKeyUsage',
      );
      expect(out.status, out.stderr).toBe(0);
      return out.stdout;
    };
    const server = extensions('server');
    expect(server).toContain('DNS:vaporform-engine-0.vaporform-engine');
    expect(server).toContain('IP Address:127.0.0.1');
    expect(server).toContain('TLS Web Server Authentication');
    expect(server).not.toContain('TLS Web Client Authentication');
    const client = extensions('client');
    expect(client).toContain('TLS Web Client Authentication');
    expect(client).not.toContain('TLS Web Server Authentication');

    // The pair works as the engine and the servers use it: mutual TLS, by the engine's name.
    expect(await handshake(dir, 'vaporform-engine-0.vaporform-engine')).toBe('vaporform-server');
    await expect(handshake(dir, 'engine.example.com')).rejects.toThrow(/altnames/i);
  });
});

describe("the pods' runtime settings on a real server", () => {
  let database: TestDatabase | undefined;
  afterAll(async () => {
    await database?.drop();
  });

  it('refuses to start without the engine instead of falling back to the process sandbox', async () => {
    const config = named(render('production'), 'ConfigMap', 'vaporform-config').data!;
    // The ConfigMap as it is, but for what names a place: this machine's address and data dir,
    // and for the engine a closed loopback port and certificates made by engine-certs.sh.
    const { HOST: _host, PORT: _port, VAPORFORM_DATA_DIR: _dataDir, ...settings } = config;
    const certs = mkdtempSync(path.join(tmpdir(), 'vf-engine-certs-'));
    engineCerts(certs);
    const dockerHost = `tcp://127.0.0.1:${await freePort()}`;
    database = await createTestDatabase();
    const started = startServer({
      ...settings,
      DATABASE_URL: database.url,
      DOCKER_HOST: dockerHost,
      DOCKER_CERT_PATH: path.join(certs, 'client'),
    });
    // It exits before it listens: /readyz never answers, the pod never gets traffic.
    await expect(started).rejects.toThrow(
      `exited (1): vaporform: failed to start: VAPORFORM_RUNTIME=docker: no Docker engine answers at ${dockerHost}`,
    );
  }, 60_000);
});

describe('infra/haproxy/haproxy.cfg', () => {
  it('is a valid HAProxy configuration', () => {
    requireBinary('haproxy', 'haproxy');
    const out = run('haproxy', ['-c', '-f', 'infra/haproxy/haproxy.cfg']);
    expect(out.status, out.stdout + out.stderr).toBe(0);
  });
});
