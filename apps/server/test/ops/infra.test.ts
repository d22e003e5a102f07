import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler';
import { Ingress } from 'kubernetes-models/networking.k8s.io/v1/Ingress';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Secret } from 'kubernetes-models/v1/Secret';
import { Service } from 'kubernetes-models/v1/Service';
import { parse, parseAllDocuments } from 'yaml';
import { describe, expect, it } from 'vitest';
import { requireBinary } from '../topology/processes.ts';

// The deployment files, checked offline with the operators' own tools: Debian's docker-compose
// renders infra/compose.yaml, kubectl's kustomize renders infra/k8s, haproxy checks its config.
// Every rendered Kubernetes object is validated against the Kubernetes OpenAPI schemas (the
// `kubernetes-models` package: validators generated from the API server's own OpenAPI document,
// run with ajv — types, required fields, enums, formats). Like kubeconform without `-strict`,
// those schemas allow unknown fields; so the objects are also checked against what would break
// Vaporform: selectors that match, probes, ports and names that resolve, and configuration
// keys that the server knows.

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
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  spec?: any;
  data?: Record<string, string>;
  stringData?: Record<string, string>;
}

const apiVersions: Record<string, string> = {
  ConfigMap: 'v1',
  Secret: 'v1',
  Service: 'v1',
  Deployment: 'apps/v1',
  Ingress: 'networking.k8s.io/v1',
  HorizontalPodAutoscaler: 'autoscaling/v2',
  PodDisruptionBudget: 'policy/v1',
};

function render(overlay: string): K8sObject[] {
  requireBinary('kubectl', 'kubernetes-client');
  const out = run('kubectl', ['kustomize', `infra/k8s/overlays/${overlay}`]);
  expect(out.status, out.stderr).toBe(0);
  return parseAllDocuments(out.stdout).map((d) => d.toJS() as K8sObject);
}

/** The schema validator of each kind the overlays render (apiVersion as in `apiVersions`). */
const schemas: Record<string, new (data: never) => { validate(): void }> = {
  ConfigMap,
  Secret,
  Service,
  Deployment,
  Ingress,
  HorizontalPodAutoscaler,
  PodDisruptionBudget,
};

/** The schema errors of `o` ('' when valid). */
function schemaErrors(o: K8sObject): string {
  const Model = schemas[o.kind];
  if (!Model) return `no schema for ${o.apiVersion} ${o.kind}`;
  try {
    new Model(o as never).validate();
    return '';
  } catch (err) {
    return (err as Error).message;
  }
}

function matches(selector: Record<string, string>, labels: Record<string, string>): boolean {
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
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

  it('every object is valid against the Kubernetes OpenAPI schema of its kind', () => {
    const objects = render(overlay);
    expect(objects).toHaveLength(Object.keys(schemas).length);
    for (const o of objects) expect(schemaErrors(o), `${o.kind} ${o.metadata.name}`).toBe('');
    // The validator does refuse what an API server would: a port as a word, a path without
    // its pathType, a replica count as a string, a probe without a handler's port.
    const broken = structuredClone(objects);
    const byKind = (kind: string) => broken.find((o) => o.kind === kind)!;
    byKind('Deployment').spec.replicas = 'two';
    byKind('Deployment').spec.template.spec.containers[0].readinessProbe.httpGet.port = undefined;
    delete byKind('Ingress').spec.rules[0].http.paths[0].pathType;
    byKind('Service').spec.ports[0].port = 'http';
    for (const kind of ['Deployment', 'Ingress', 'Service']) {
      expect(schemaErrors(byKind(kind)), kind).not.toBe('');
    }
  });

  it('wires the server: selectors match, probes on /healthz and /readyz, every name resolves', () => {
    const objects = render(overlay);
    const byKind = (kind: string) => objects.find((o) => o.kind === kind)!;
    const deployment = byKind('Deployment');
    const podLabels = deployment.spec.template.metadata.labels as Record<string, string>;
    expect(matches(deployment.spec.selector.matchLabels, podLabels)).toBe(true);
    expect(deployment.spec.replicas).toBeGreaterThanOrEqual(1);
    const [container] = deployment.spec.template.spec.containers as any[];
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

    const hpa = byKind('HorizontalPodAutoscaler');
    expect(hpa.spec.scaleTargetRef).toEqual({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      name: deployment.metadata.name,
    });
    expect(hpa.spec.minReplicas).toBeLessThanOrEqual(hpa.spec.maxReplicas);
    const pdb = byKind('PodDisruptionBudget');
    expect(matches(pdb.spec.selector.matchLabels, podLabels)).toBe(true);
    expect(pdb.spec.minAvailable).toBeLessThan(hpa.spec.minReplicas + 1);
  });
});

describe('infra/haproxy/haproxy.cfg', () => {
  it('is a valid HAProxy configuration', () => {
    requireBinary('haproxy', 'haproxy');
    const out = run('haproxy', ['-c', '-f', 'infra/haproxy/haproxy.cfg']);
    expect(out.status, out.stdout + out.stderr).toBe(0);
  });
});
