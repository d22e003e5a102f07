import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../db.ts';
import { requireBinary, startServer } from '../topology/processes.ts';

// The deployment files, checked offline with the operators' own tools: Debian's docker-compose
// renders infra/compose.yaml, kubectl's kustomize renders infra/k8s, haproxy checks its config.
// Every rendered Kubernetes object is validated against the Kubernetes OpenAPI schemas (the
// `kubernetes-models` package: validators generated from the API server's own OpenAPI document,
// run with ajv — types, required fields, enums, formats), strictly like `kubeconform -strict`:
// a field its schema does not declare is an error. Then the objects are checked against what
// would break Vaporform: selectors that match, probes, ports, volumes and names that resolve,
// configuration keys that the server knows, and the pod's engine settings on a real server.

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
  StatefulSet: 'apps/v1',
  Ingress: 'networking.k8s.io/v1',
};

function render(overlay: string): K8sObject[] {
  requireBinary('kubectl', 'kubernetes-client');
  const out = run('kubectl', ['kustomize', `infra/k8s/overlays/${overlay}`]);
  expect(out.status, out.stderr).toBe(0);
  return parseAllDocuments(out.stdout).map((d) => d.toJS() as K8sObject);
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
  args?: string[];
  restartPolicy?: string;
  startupProbe?: unknown;
  securityContext?: { privileged?: boolean; runAsNonRoot?: boolean };
  volumeMounts: { name: string; mountPath: string }[];
}

/** The volume mounted at the folder holding `file` in `container`, if any. */
function volumeHolding(container: Container, file: string): string | undefined {
  return container.volumeMounts.find((m) => path.dirname(file) === m.mountPath)?.name;
}

describe.each(['staging', 'production'])('infra/k8s overlay %s (kubectl kustomize)', (overlay) => {
  it('renders each object with a known apiVersion/kind, a DNS name, its namespace and the required fields', () => {
    const objects = render(overlay);
    expect(objects.map((o) => o.kind).sort()).toEqual(Object.keys(apiVersions).sort());
    for (const o of objects) {
      expect(o.apiVersion, o.kind).toBe(apiVersions[o.kind]);
      expect(o.metadata.name).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
      expect(o.metadata.namespace).toBe(
        overlay === 'production' ? 'vaporform' : 'vaporform-staging',
      );
      if (!['ConfigMap', 'Secret'].includes(o.kind)) expect(o.spec, o.kind).toBeTypeOf('object');
    }
  });

  it('every object is valid against the Kubernetes OpenAPI schema of its kind, unknown fields refused', async () => {
    const objects = render(overlay);
    for (const o of objects) {
      expect(await schemaErrors(o), `${o.kind} ${o.metadata.name}`).toEqual([]);
    }
    // Maps take any key (labels, annotations, data); a kind without a schema is an error.
    expect(objects.find((o) => o.kind === 'Service')!.metadata.annotations).toHaveProperty([
      'prometheus.io/scrape',
    ]);
    expect(await schemaErrors({ ...objects[0]!, kind: 'Widget' })).toEqual([
      'no schema for v1 Widget',
    ]);

    // The validator refuses what an API server would: a port as a word, a path without its
    // pathType, a replica count as a string, a probe without a handler's port.
    const broken = structuredClone(objects);
    const byKind = (kind: string) => broken.find((o) => o.kind === kind)!;
    byKind('StatefulSet').spec.replicas = 'two';
    byKind('StatefulSet').spec.template.spec.containers[0].readinessProbe.httpGet.port = undefined;
    delete byKind('Ingress').spec.rules[0].http.paths[0].pathType;
    byKind('Service').spec.ports[0].port = 'http';
    for (const kind of ['StatefulSet', 'Ingress', 'Service']) {
      expect(await schemaErrors(byKind(kind)), kind).not.toEqual([]);
    }

    // …and, like `kubeconform -strict`, a misspelled field, at any depth, which kubectl apply
    // would drop with a warning (a probe that silently never runs).
    const misspelled = structuredClone(objects.find((o) => o.kind === 'StatefulSet')!);
    const pod = misspelled.spec.template.spec;
    pod.containers[0].livenessprobe = pod.containers[0].livenessProbe;
    delete pod.containers[0].livenessProbe;
    pod.containers[0].readinessProbe.httpGett = pod.containers[0].readinessProbe.httpGet;
    pod.initContainers[0].securityContext.priviledged = true;
    misspelled.metadata.annotations = { 'any.example.com/key': 'fine' };
    expect((await schemaErrors(misspelled)).sort()).toEqual([
      '/spec/template/spec/containers/0/livenessprobe: unknown field',
      '/spec/template/spec/containers/0/readinessProbe/httpGett: unknown field',
      '/spec/template/spec/initContainers/0/securityContext/priviledged: unknown field',
    ]);
  });

  it('wires the server: selectors match, probes on /healthz and /readyz, every name resolves', () => {
    const objects = render(overlay);
    const byKind = (kind: string) => objects.find((o) => o.kind === kind)!;
    const statefulSet = byKind('StatefulSet');
    const podLabels = statefulSet.spec.template.metadata.labels as Record<string, string>;
    expect(matches(statefulSet.spec.selector.matchLabels, podLabels)).toBe(true);
    const [container] = statefulSet.spec.template.spec.containers as any[];
    expect(container.image).toMatch(/^registry\.example\.com\/vaporform\/server:/);
    expect(container.readinessProbe.httpGet.path).toBe('/readyz');
    expect(container.livenessProbe.httpGet.path).toBe('/healthz');
    const portNames = (container.ports as { name: string; containerPort: number }[]).map(
      (p) => p.name,
    );
    const config = byKind('ConfigMap');
    const secret = byKind('Secret');
    expect(container.envFrom).toEqual([
      { configMapRef: { name: config.metadata.name } },
      { secretRef: { name: secret.metadata.name } },
    ]);
    // Every key is a variable the server reads; the container listens where the Service sends.
    const known = knownVariables();
    for (const key of [...Object.keys(config.data!), ...Object.keys(secret.stringData!)]) {
      expect(known, key).toContain(key);
    }
    expect(config.data!.PORT).toBe(String(container.ports[0].containerPort));
    expect(config.data!.HOST).toBe('0.0.0.0');

    const service = byKind('Service');
    expect(statefulSet.spec.serviceName).toBe(service.metadata.name);
    expect(matches(service.spec.selector, podLabels)).toBe(true);
    for (const p of service.spec.ports) expect(portNames).toContain(p.targetPort);

    const ingress = byKind('Ingress');
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
  });

  it('runs project containers on the Docker engine in the pod, by a socket only the pod shares', () => {
    const objects = render(overlay);
    const config = objects.find((o) => o.kind === 'ConfigMap')!.data!;
    const statefulSet = objects.find((o) => o.kind === 'StatefulSet')!;
    // One pod: a second would reconcile every project onto its own engine too.
    expect(statefulSet.spec.replicas).toBe(1);
    expect(objects.map((o) => o.kind)).not.toContain('HorizontalPodAutoscaler');
    const pod = statefulSet.spec.template.spec;
    const server = (pod.containers as Container[]).find((c) => c.name === 'server')!;
    const engine = (pod.initContainers as Container[]).find((c) => c.name === 'engine')!;
    // Docker, never the process sandbox a pod would fall back to with `auto`.
    expect(config.VAPORFORM_RUNTIME).toBe('docker');
    // A native sidecar: answering before the server starts, running as long as the pod does.
    expect(engine.restartPolicy).toBe('Always');
    expect(engine.startupProbe).toBeTypeOf('object');
    expect(engine.securityContext?.privileged).toBe(true);
    expect(server.securityContext?.privileged).toBeUndefined();
    expect(server.securityContext?.runAsNonRoot).toBe(true);
    // DOCKER_HOST is the engine's only listener, in a volume both containers mount.
    const socket = config.DOCKER_HOST!;
    expect(socket).toMatch(/^unix:\/\//);
    expect(engine.args![0]).toBe('dockerd');
    expect(engine.args!.filter((a) => a.startsWith('--host') || a.startsWith('-H'))).toEqual([
      `--host=${socket}`,
    ]);
    const socketVolume = volumeHolding(server, socket.slice('unix://'.length));
    expect(socketVolume).toBeDefined();
    expect(volumeHolding(engine, socket.slice('unix://'.length))).toBe(socketVolume);
    // The engine resolves the workspaces' bind mounts by path: the data dir at the same place.
    const dataDir = config.VAPORFORM_DATA_DIR!;
    const dataVolume = server.volumeMounts.find((m) => m.mountPath === dataDir)?.name;
    expect(dataVolume).toBeDefined();
    expect(engine.volumeMounts).toContainEqual({ name: dataVolume, mountPath: dataDir });
  });
});

describe("the pods' runtime settings on a real server", () => {
  let database: TestDatabase | undefined;
  afterAll(async () => {
    await database?.drop();
  });

  it('refuses to start without the engine instead of falling back to the process sandbox', async () => {
    const config = render('production').find((o) => o.kind === 'ConfigMap')!.data!;
    const socket = config.DOCKER_HOST!.slice('unix://'.length);
    expect(existsSync(socket), `${socket} exists on this machine`).toBe(false);
    database = await createTestDatabase();
    const started = startServer({
      DATABASE_URL: database.url,
      VAPORFORM_RUNTIME: config.VAPORFORM_RUNTIME!,
      DOCKER_HOST: config.DOCKER_HOST!,
      LOG_LEVEL: 'info',
    });
    // It exits before it listens: /readyz never answers, the pod never gets traffic.
    await expect(started).rejects.toThrow(
      `exited (1): vaporform: failed to start: VAPORFORM_RUNTIME=docker: no Docker engine answers at ${config.DOCKER_HOST}`,
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
