import { errors } from '../../common/errors.ts';
import type { Logger } from '../../common/logger.ts';
import type { Db } from '../../db/index.ts';
import type { ActivityService } from '../activity/index.ts';
import type { Metrics } from '../monitoring/index.ts';
import type { ProjectEventData, ProjectEventType } from '@vaporform/sdk';
import type { EventBus } from '../../common/bus.ts';
import { publishProjectEvent } from '../../common/project-events.ts';
import { openValue, sealValue, SealedValueError, type MasterKey } from './envelope.ts';
import type { KeyRing } from './keyring.ts';
import {
  rotateMasterKey,
  type RotationOptions,
  type RotationReport,
  type SealedColumn,
} from './rotation.ts';
import {
  SecretsStore,
  type IntegrationRow,
  type KeyStatus,
  type SealedColumnSpec,
} from './store.ts';

/** Environment variable names: what a shell accepts. */
export const envNamePattern = /^[A-Za-z_][A-Za-z0-9_]*$/;
export const maxEnvNameLength = 128;
export const maxEnvValueBytes = 32 * 1024;
export const maxEnvVars = 200;
/** Integration service names: lowercase slugs (`stripe`, `openai`, `my-crm`). */
export const serviceNamePattern = /^[a-z][a-z0-9_-]{0,62}$/;

/** How an integration's last test went. `untested`: no live check exists from this server. */
export type TestOutcome = 'passed' | 'failed' | 'untested';

/** The result of testing an integration. */
export interface IntegrationTest {
  result: TestOutcome;
  message: string;
  checks: { name: string; ok: boolean | null; detail: string }[];
  testedAt: string;
}

/** An integration as admins see it: never the key or the webhook secret. */
export interface Integration {
  id: string;
  service: string;
  serviceType: string;
  configuration: Record<string, unknown>;
  /** The key's last four characters, when it is long enough to show them (12+). */
  last4: string | null;
  webhookUrl?: string;
  hasWebhookSecret: boolean;
  active: boolean;
  configured: boolean;
  status: 'untested' | 'ok' | 'failing' | 'inactive';
  lastTest?: IntegrationTest;
  usage: { requestCount: number; errorCount: number; lastRequestAt?: string; lastErrorAt?: string };
  /** Variables the project's container receives for it (values never shown). */
  envNames: string[];
  createdAt: string;
  updatedAt: string;
}

/** What PUT takes. Absent fields keep their current value; `null` clears. */
export interface IntegrationInput {
  apiKey?: string;
  serviceType?: string;
  configuration?: Record<string, unknown>;
  webhookSecret?: string | null;
  webhookUrl?: string | null;
  active?: boolean;
}

/** A master key and how many stored values it seals. */
export interface MasterKeyStatus {
  id: string;
  algorithm: string;
  status: KeyStatus;
  available: boolean;
  values: number;
  activatedAt: string;
}

export interface SecretsServiceDeps {
  db: Db;
  keyring: KeyRing;
  activity: ActivityService;
  bus: EventBus;
  metrics: Metrics;
  log: Logger;
}

/** Known services: their type, and what their keys look like (an offline format check). */
const knownServices: Record<string, { type: string; keyFormat?: RegExp; keyName?: string }> = {
  stripe: {
    type: 'payment',
    keyFormat: /^(sk|rk)_(test|live)_\w+$/,
    keyName: 'a Stripe secret key (sk_… or rk_…)',
  },
  openai: { type: 'ai', keyFormat: /^sk-[\w-]+$/, keyName: 'an OpenAI key (sk-…)' },
  anthropic: { type: 'ai', keyFormat: /^sk-ant-[\w-]+$/, keyName: 'an Anthropic key (sk-ant-…)' },
  github: {
    type: 'vcs',
    keyFormat: /^(gh[pousr]_\w+|github_pat_\w+)$/,
    keyName: 'a GitHub token (ghp_… or github_pat_…)',
  },
  sendgrid: { type: 'email', keyFormat: /^SG\.[\w-]+\.[\w-]+$/, keyName: 'a SendGrid key (SG.…)' },
  resend: { type: 'email', keyFormat: /^re_\w+$/, keyName: 'a Resend key (re_…)' },
  twilio: { type: 'messaging' },
  slack: { type: 'messaging' },
  supabase: { type: 'database' },
  firebase: { type: 'database' },
  aws: { type: 'cloud' },
  gcp: { type: 'cloud' },
  azure: { type: 'cloud' },
  sentry: { type: 'monitoring' },
};

const integrationSpecs = {
  apiKey: {
    name: 'project_integrations.api_key_encrypted',
    table: 'project_integrations',
    keys: ['project_id', 'service_name'],
    column: 'api_key_encrypted',
  },
  webhookSecret: {
    name: 'project_integrations.webhook_secret_encrypted',
    table: 'project_integrations',
    keys: ['project_id', 'service_name'],
    column: 'webhook_secret_encrypted',
  },
} as const satisfies Record<string, SealedColumnSpec>;

const envSpec = {
  name: 'project_env_vars.value_encrypted',
  table: 'project_env_vars',
  keys: ['project_id', 'name'],
  column: 'value_encrypted',
} as const satisfies SealedColumnSpec;

/** The context a cell of `spec` is sealed with: table, column and row key. */
function contextOf(spec: SealedColumnSpec, key: readonly [string, string]): string {
  return `${spec.table}.${spec.column}:${key[0]}:${key[1]}`;
}

/** `STRIPE` for `stripe`, `MY_CRM` for `my-crm`. */
function envPrefix(service: string): string {
  return service.toUpperCase().replace(/[^A-Z0-9_]/g, '_');
}

/**
 * Third-party integrations and project environment variables, sealed at rest with AES-256-GCM
 * (envelope.ts) under master keys (keyring.ts). Role checks are the caller's: the routes run
 * `projectAccess` first; runtime callers (containers) act for the system.
 */
export class SecretsService {
  readonly #db: Db;
  readonly #store: SecretsStore;
  readonly #keyring: KeyRing;
  readonly #activity: ActivityService;
  readonly #bus: EventBus;
  readonly #metrics: Metrics;
  readonly #log: Logger;
  readonly #columns: SealedColumn[] = [];

  constructor(deps: SecretsServiceDeps) {
    this.#db = deps.db;
    this.#store = new SecretsStore(deps.db);
    this.#keyring = deps.keyring;
    this.#activity = deps.activity;
    this.#bus = deps.bus;
    this.#metrics = deps.metrics;
    this.#log = deps.log;
    for (const spec of [integrationSpecs.apiKey, integrationSpecs.webhookSecret, envSpec]) {
      this.#columns.push(this.#ownColumn(spec));
    }
  }

  /**
   * Makes sure the database names an active master key (the preferred key of the ring on a new
   * database) and that this process holds it.
   * @throws Error when the active key is not available: start-up must stop, not lose secrets.
   */
  async start(): Promise<void> {
    let active = await this.#store.activeKey();
    if (!active) {
      await this.#store.insertActiveIfNone(this.#keyring.preferred().id);
      active = await this.#store.activeKey();
    }
    if (!active) throw new Error('could not record an active master key');
    if (!this.#keyring.find(active.id)) {
      throw new Error(
        `stored secrets are sealed with master key ${active.id}, which this server does not have: ` +
          `set VAPORFORM_MASTER_KEY to it or restore ${this.#keyring.file}`,
      );
    }
    const preferred = this.#keyring.preferred().id;
    if (this.#keyring.fromEnvironment && preferred !== active.id) {
      this.#log.info(
        { activeKeyId: active.id, newKeyId: preferred },
        'VAPORFORM_MASTER_KEY names a newer master key: run `npm run vaporform -- rotate-master-key` to use it',
      );
    }
  }

  // ── sealing, for other services ──

  /**
   * Seals a value under the active master key, bound to `context` (say which table, column
   * and row: `users.mfa_secret:<userId>`); store the result, and open it with the same context.
   * @throws AppError unavailable when this process lacks the active key (restart it).
   */
  async seal(plaintext: string, context: string): Promise<string> {
    const row = await this.#store.activeKey();
    if (!row) throw errors.unavailable('No active master key');
    return sealValue(this.#requireKey(row.id), plaintext, context);
  }

  /**
   * Opens a value sealed with {@link seal} (or by this service) with the context it was sealed with.
   * @throws SealedValueError when it is malformed, altered, from another row, or its key is missing.
   */
  open(sealed: string, context: string): string {
    try {
      return openValue((id) => this.#keyring.find(id), sealed, context);
    } catch (err) {
      if (err instanceof SealedValueError) {
        this.#metrics.secretOpenFailures.inc({ problem: err.problem });
        this.#log.error({ problem: err.problem, context }, 'a sealed value would not open');
      }
      throw err;
    }
  }

  /** Adds another service's sealed column to key rotation (see {@link SealedColumn}). */
  addSealedColumn(column: SealedColumn): void {
    this.#columns.push(column);
  }

  // ── integrations ──

  /** A project's integrations, by service name. */
  async listIntegrations(projectId: string): Promise<Integration[]> {
    return (await this.#store.listIntegrations(projectId)).map(toIntegration);
  }

  /** @throws AppError not_found when the project has no such integration. */
  async getIntegration(projectId: string, service: string): Promise<Integration> {
    const row = await this.#store.findIntegration(projectId, service);
    if (!row) throw errors.notFound('integration');
    return toIntegration(row);
  }

  /**
   * Creates or replaces an integration; the key and webhook secret are sealed, only `last4` kept
   * in clear. Absent fields keep their value; `null` clears.
   * @throws AppError invalid_request (bad service name, no apiKey for a new integration).
   */
  async putIntegration(
    projectId: string,
    userId: string,
    service: string,
    input: IntegrationInput,
  ): Promise<{ integration: Integration; created: boolean }> {
    if (!serviceNamePattern.test(service)) {
      throw errors.invalid('The service name is not valid', [
        { field: 'service', message: 'lowercase letters, digits, - and _, starting with a letter' },
      ]);
    }
    const result = await this.#db.transaction().execute(async (tx) => {
      const store = new SecretsStore(tx);
      const existing = await store.findIntegration(projectId, service, true);
      if (!existing && input.apiKey === undefined) {
        throw errors.invalid('A new integration needs an apiKey', [
          { field: 'apiKey', message: 'Required when the integration does not exist yet' },
        ]);
      }
      const active = await this.#activeKeyInTransaction(store);
      const key: [string, string] = [projectId, service];
      const apiKeySealed =
        input.apiKey !== undefined
          ? sealValue(active, input.apiKey, contextOf(integrationSpecs.apiKey, key))
          : (existing?.api_key_encrypted ?? null);
      const apiKeyLast4 =
        input.apiKey !== undefined ? last4(input.apiKey) : (existing?.api_key_last4 ?? null);
      const webhookSecretSealed =
        input.webhookSecret === undefined
          ? (existing?.webhook_secret_encrypted ?? null)
          : input.webhookSecret === null
            ? null
            : sealValue(
                active,
                input.webhookSecret,
                contextOf(integrationSpecs.webhookSecret, key),
              );
      const row = await store.upsertIntegration({
        projectId,
        userId,
        service,
        serviceType:
          input.serviceType ?? existing?.service_type ?? knownServices[service]?.type ?? 'other',
        configuration: input.configuration ?? existing?.configuration ?? {},
        apiKeySealed,
        apiKeyLast4,
        webhookUrl:
          input.webhookUrl === undefined ? (existing?.webhook_url ?? null) : input.webhookUrl,
        webhookSecretSealed,
        active: input.active ?? existing?.is_active ?? true,
      });
      await this.#activity.record(
        {
          projectId,
          userId,
          type: existing ? 'integration_updated' : 'integration_added',
          description: `${existing ? 'Updated' : 'Added'} the ${service} integration`,
          sourceType: 'user',
          metadata: { service, keyChanged: input.apiKey !== undefined },
        },
        tx,
      );
      return { row, created: !existing };
    });
    await this.#publish(projectId, 'integration_changed', {
      service,
      action: result.created ? 'added' : 'updated',
      restartRequired: true,
    });
    return { integration: toIntegration(result.row), created: result.created };
  }

  /** @throws AppError not_found when the project has no such integration. */
  async deleteIntegration(projectId: string, userId: string, service: string): Promise<void> {
    await this.#db.transaction().execute(async (tx) => {
      if (!(await new SecretsStore(tx).deleteIntegration(projectId, service))) {
        throw errors.notFound('integration');
      }
      await this.#activity.record(
        {
          projectId,
          userId,
          type: 'integration_removed',
          description: `Removed the ${service} integration`,
          sourceType: 'user',
          metadata: { service },
        },
        tx,
      );
    });
    await this.#publish(projectId, 'integration_changed', {
      service,
      action: 'removed',
      restartRequired: true,
    });
  }

  /**
   * Tests an integration offline: the stored key must open, and for known services it should
   * look like their keys. No request leaves this server, so the result is `untested` unless the
   * key cannot be opened (`failed`).
   * @throws AppError not_found when the project has no such integration.
   */
  async testIntegration(
    projectId: string,
    userId: string,
    service: string,
  ): Promise<{ integration: Integration; test: IntegrationTest }> {
    const row = await this.#store.findIntegration(projectId, service);
    if (!row) throw errors.notFound('integration');
    const checks: IntegrationTest['checks'] = [];
    let apiKey: string | undefined;
    if (row.api_key_encrypted) {
      try {
        apiKey = this.open(
          row.api_key_encrypted,
          contextOf(integrationSpecs.apiKey, [projectId, service]),
        );
        checks.push({ name: 'stored key opens', ok: true, detail: 'decrypted and authenticated' });
      } catch (err) {
        if (!(err instanceof SealedValueError)) throw err;
        checks.push({ name: 'stored key opens', ok: false, detail: err.message });
      }
    } else {
      checks.push({ name: 'stored key opens', ok: false, detail: 'no key is stored' });
    }
    const known = knownServices[service];
    if (apiKey !== undefined && known?.keyFormat) {
      const ok = known.keyFormat.test(apiKey);
      checks.push({
        name: 'key format',
        ok,
        detail: ok ? `looks like ${known.keyName}` : `does not look like ${known.keyName}`,
      });
    }
    const failed = checks.some((c) => c.name === 'stored key opens' && !c.ok);
    const test: IntegrationTest = {
      result: failed ? 'failed' : 'untested',
      message: failed
        ? 'The stored key cannot be used: set it again'
        : `No live check of ${service} is made from this server; the stored key opens${
            checks.some((c) => c.ok === false) ? ', but its format looks wrong' : ''
          }`,
      checks,
      testedAt: new Date().toISOString(),
    };
    const updated = await this.#store.setTestResult(projectId, service, test);
    await this.#activity.record({
      projectId,
      userId,
      type: 'integration_tested',
      description: `Tested the ${service} integration: ${test.result}`,
      sourceType: 'user',
      metadata: { service, result: test.result },
    });
    return { integration: toIntegration(updated ?? row), test };
  }

  /**
   * The decrypted credentials of an active integration, for server-side callers that use it
   * (counted as a request). Never return these from a route or log them.
   * @throws AppError not_found when there is no such active, configured integration.
   */
  async integrationCredentials(
    projectId: string,
    service: string,
  ): Promise<{ apiKey: string; webhookSecret?: string }> {
    const row = await this.#store.findIntegration(projectId, service);
    if (!row || !row.is_active || !row.api_key_encrypted) throw errors.notFound('integration');
    const key: [string, string] = [projectId, service];
    const apiKey = this.open(row.api_key_encrypted, contextOf(integrationSpecs.apiKey, key));
    const webhookSecret = row.webhook_secret_encrypted
      ? this.open(row.webhook_secret_encrypted, contextOf(integrationSpecs.webhookSecret, key))
      : undefined;
    await this.#store.countUsage(projectId, service, true);
    return { apiKey, ...(webhookSecret !== undefined ? { webhookSecret } : {}) };
  }

  /** Counts a failed call made with an integration's credentials (its usage shows it). */
  async recordIntegrationError(projectId: string, service: string): Promise<void> {
    await this.#store.countUsage(projectId, service, false);
  }

  // ── project environment ──

  /** Names of the project's own variables, sorted (values are never returned). */
  async environmentVariableNames(projectId: string): Promise<string[]> {
    return this.#store.envVarNames(projectId);
  }

  /**
   * Every variable the project's container receives, names only, sorted: its own variables and
   * those its active integrations supply (`STRIPE_API_KEY`…). What the AI may be told.
   */
  async environmentNames(projectId: string): Promise<string[]> {
    const names = new Set(await this.#store.envVarNames(projectId));
    for (const row of await this.#store.listIntegrations(projectId)) {
      for (const name of integrationEnvNames(row)) names.add(name);
    }
    return [...names].sort();
  }

  /**
   * Sets variables (a string) and removes them (`null`), atomically; others are kept.
   * Members hear `environment_changed {names, restartRequired}` on `project:<id>`.
   * @param options.restartRequired the project's container runs with the old values (the
   *   routes pass whether it is running); true when not told.
   * @returns the names of the project's variables afterwards.
   * @throws AppError invalid_request for a bad name or value, or past {@link maxEnvVars}.
   */
  async setEnvironment(
    projectId: string,
    userId: string,
    vars: Record<string, string | null>,
    options: { restartRequired?: boolean } = {},
  ): Promise<string[]> {
    const entries = Object.entries(vars);
    const problems = entries.flatMap(([name, value]) => envProblems(name, value));
    if (problems.length) throw errors.invalid('Some variables are not valid', problems);
    if (entries.length === 0) return this.#store.envVarNames(projectId);
    const names = await this.#db.transaction().execute(async (tx) => {
      const store = new SecretsStore(tx);
      await store.lockProjectEnvironment(projectId);
      const set = entries.filter((e): e is [string, string] => e[1] !== null);
      const removed = entries.filter(([, v]) => v === null).map(([n]) => n);
      if (set.length) {
        const active = await this.#activeKeyInTransaction(store);
        for (const [name, value] of set) {
          const sealed = sealValue(active, value, contextOf(envSpec, [projectId, name]));
          await store.upsertEnvVar(projectId, name, sealed, userId);
        }
      }
      await store.deleteEnvVars(projectId, removed);
      const after = await store.envVarNames(projectId);
      if (after.length > maxEnvVars) {
        throw errors.invalid(`A project holds at most ${maxEnvVars} variables`, [
          { field: 'vars', message: `${after.length} variables after this change` },
        ]);
      }
      await this.#activity.record(
        {
          projectId,
          userId,
          type: 'environment_updated',
          description: `Updated the environment (${set.length} set, ${removed.length} removed)`,
          sourceType: 'user',
          metadata: { set: set.map(([n]) => n), removed },
        },
        tx,
      );
      return after;
    });
    const restartRequired = options.restartRequired ?? true;
    await this.#publish(projectId, 'environment_changed', { names, restartRequired });
    return names;
  }

  /**
   * Removes one variable; `options` and the event as for {@link setEnvironment}.
   * @throws AppError not_found when the project has no variable with that name.
   */
  async deleteEnvironmentVariable(
    projectId: string,
    userId: string,
    name: string,
    options: { restartRequired?: boolean } = {},
  ): Promise<void> {
    const names = await this.#db.transaction().execute(async (tx) => {
      const store = new SecretsStore(tx);
      await store.lockProjectEnvironment(projectId);
      if ((await store.deleteEnvVars(projectId, [name])) === 0) throw errors.notFound('variable');
      await this.#activity.record(
        {
          projectId,
          userId,
          type: 'environment_updated',
          description: `Removed the environment variable ${name}`,
          sourceType: 'user',
          metadata: { set: [], removed: [name] },
        },
        tx,
      );
      return store.envVarNames(projectId);
    });
    const restartRequired = options.restartRequired ?? true;
    await this.#publish(projectId, 'environment_changed', { names, restartRequired });
  }

  /**
   * The decrypted environment for the project's container or process, read at each start: its
   * active integrations' keys (`<SERVICE>_API_KEY`, `<SERVICE>_WEBHOOK_SECRET`) overridden by its
   * own variables. For the runtime only: never log, return or show it.
   * @throws SealedValueError when a stored value will not open (fails closed).
   */
  async projectEnvironment(projectId: string): Promise<Record<string, string>> {
    const env: Record<string, string> = {};
    for (const row of await this.#store.listIntegrations(projectId)) {
      if (!row.is_active) continue;
      const key: [string, string] = [projectId, row.service_name];
      const prefix = envPrefix(row.service_name);
      if (row.api_key_encrypted) {
        env[`${prefix}_API_KEY`] = this.open(
          row.api_key_encrypted,
          contextOf(integrationSpecs.apiKey, key),
        );
      }
      if (row.webhook_secret_encrypted) {
        env[`${prefix}_WEBHOOK_SECRET`] = this.open(
          row.webhook_secret_encrypted,
          contextOf(integrationSpecs.webhookSecret, key),
        );
      }
    }
    for (const row of await this.#store.listEnvVars(projectId)) {
      env[row.name] = this.open(row.value_encrypted, contextOf(envSpec, [projectId, row.name]));
    }
    return env;
  }

  // ── master keys ──

  /** The master keys the database knows, with how many values each seals. */
  async keyStatus(): Promise<MasterKeyStatus[]> {
    const usage: Record<string, number> = {};
    for (const column of this.#columns) {
      for (const [id, n] of Object.entries(await column.countByKey()))
        usage[id] = (usage[id] ?? 0) + n;
    }
    return (await this.#store.listKeys()).map((k) => ({
      id: k.id,
      algorithm: k.algorithm,
      status: k.status,
      available: this.#keyring.find(k.id) !== undefined,
      values: usage[k.id] ?? 0,
      activatedAt: k.activated_at.toISOString(),
    }));
  }

  /** Rotates the master key (see rotation.ts): safe to interrupt, resumed by the next run. */
  rotateMasterKey(options?: RotationOptions): Promise<RotationReport> {
    return rotateMasterKey({
      store: this.#store,
      keyring: this.#keyring,
      columns: this.#columns,
      options,
    });
  }

  // ── internals ──

  /**
   * The active key, share-locked for the rest of the transaction so a rotation waits for this
   * write (and then re-seals it) instead of retiring a key under it.
   */
  async #activeKeyInTransaction(store: SecretsStore): Promise<MasterKey> {
    // A rotation committing while we wait for the lock hides the old row from us and the new
    // one from our snapshot: ask again with a fresh statement.
    for (let attempt = 0; attempt < 3; attempt++) {
      const row = await store.activeKeyForShare();
      if (row) return this.#requireKey(row.id);
    }
    throw errors.unavailable('No active master key');
  }

  #requireKey(id: string): MasterKey {
    const key = this.#keyring.find(id);
    if (!key) {
      this.#log.error({ keyId: id }, 'the active master key is not available to this server');
      throw errors.unavailable(
        'The active master key is not available to this server; it must be restarted with it',
      );
    }
    return key;
  }

  #ownColumn(spec: SealedColumnSpec): SealedColumn {
    return {
      name: spec.name,
      stale: async (keyId, after, limit) => {
        const cursor = after ? (JSON.parse(after) as [string, string]) : undefined;
        const cells = await this.#store.staleCells(spec, keyId, cursor, limit);
        return cells.map((c) => ({
          cursor: JSON.stringify(c.key),
          sealed: c.sealed,
          context: contextOf(spec, c.key),
        }));
      },
      replace: (cursor, expected, next) =>
        this.#store.replaceCell(spec, JSON.parse(cursor) as [string, string], expected, next),
      countByKey: () => this.#store.countByKey(spec),
    };
  }

  async #publish<T extends ProjectEventType>(
    projectId: string,
    type: T,
    data: ProjectEventData<T>,
  ): Promise<void> {
    try {
      await publishProjectEvent(this.#bus, projectId, type, data);
    } catch (err) {
      this.#log.warn({ err: (err as Error).message, type }, 'could not publish a project event');
    }
  }
}

function integrationEnvNames(row: IntegrationRow): string[] {
  if (!row.is_active) return [];
  const prefix = envPrefix(row.service_name);
  return [
    ...(row.api_key_encrypted ? [`${prefix}_API_KEY`] : []),
    ...(row.webhook_secret_encrypted ? [`${prefix}_WEBHOOK_SECRET`] : []),
  ];
}

function envProblems(name: string, value: string | null): { field: string; message: string }[] {
  const field = `vars.${name}`;
  if (!envNamePattern.test(name) || name.length > maxEnvNameLength) {
    return [
      {
        field,
        message: `names are letters, digits and _, not starting with a digit, up to ${maxEnvNameLength}`,
      },
    ];
  }
  if (value === null) return [];
  if (typeof value !== 'string') return [{ field, message: 'must be a string or null' }];
  if (value.includes('\0')) return [{ field, message: 'must not contain NUL characters' }];
  if (Buffer.byteLength(value, 'utf8') > maxEnvValueBytes) {
    return [{ field, message: `must be at most ${maxEnvValueBytes} bytes` }];
  }
  return [];
}

/** The last four characters of a key long enough (12+) for them to give little away. */
function last4(key: string): string | null {
  const chars = [...key];
  return chars.length >= 12 ? chars.slice(-4).join('') : null;
}

function toIntegration(row: IntegrationRow): Integration {
  const lastTest = (row.last_test_result ?? undefined) as IntegrationTest | undefined;
  const status: Integration['status'] = !row.is_active
    ? 'inactive'
    : lastTest?.result === 'passed'
      ? 'ok'
      : lastTest?.result === 'failed'
        ? 'failing'
        : 'untested';
  return {
    id: row.id,
    service: row.service_name,
    serviceType: row.service_type,
    configuration: (row.configuration ?? {}) as Record<string, unknown>,
    last4: row.api_key_last4,
    ...(row.webhook_url ? { webhookUrl: row.webhook_url } : {}),
    hasWebhookSecret: row.webhook_secret_encrypted !== null,
    active: row.is_active,
    configured: row.is_configured,
    status,
    ...(lastTest ? { lastTest } : {}),
    usage: {
      requestCount: row.request_count,
      errorCount: row.error_count,
      ...(row.last_request_at ? { lastRequestAt: row.last_request_at.toISOString() } : {}),
      ...(row.last_error_at ? { lastErrorAt: row.last_error_at.toISOString() } : {}),
    },
    envNames: integrationEnvNames(row),
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
  };
}
