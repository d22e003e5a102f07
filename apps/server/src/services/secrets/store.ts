import { sql, type ColumnType, type Generated, type Kysely, type Selectable } from 'kysely';
import type { Db } from '../../db/index.ts';

/** jsonb: read as parsed JSON, written as JSON text. */
type Json = ColumnType<unknown, string, string>;

export type KeyStatus = 'active' | 'retiring' | 'retired';

interface SecretKeysTable {
  id: string;
  algorithm: Generated<string>;
  status: KeyStatus;
  created_at: Generated<Date>;
  activated_at: Generated<Date>;
  retiring_at: Date | null;
  retired_at: Date | null;
}

interface IntegrationsTable {
  id: Generated<string>;
  project_id: string;
  user_id: string | null;
  service_name: string;
  service_type: string;
  configuration: Json;
  api_key_encrypted: string | null;
  api_key_last4: string | null;
  webhook_url: string | null;
  webhook_secret_encrypted: string | null;
  is_active: Generated<boolean>;
  is_configured: Generated<boolean>;
  last_test_result: ColumnType<unknown, string | null, string | null>;
  last_tested_at: Date | null;
  request_count: Generated<number>;
  last_request_at: Date | null;
  error_count: Generated<number>;
  last_error_at: Date | null;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
}

interface EnvVarsTable {
  project_id: string;
  name: string;
  value_encrypted: string;
  created_by: string | null;
  updated_by: string | null;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
}

type SecretsTables = {
  secret_keys: SecretKeysTable;
  project_integrations: IntegrationsTable;
  project_env_vars: EnvVarsTable;
};

export type KeyRow = Selectable<SecretKeysTable>;
export type IntegrationRow = Selectable<IntegrationsTable>;
export type EnvVarRow = Selectable<EnvVarsTable>;

/** A sealed column of this service's tables, addressed by a two-part row key. */
export interface SealedColumnSpec {
  name: string;
  table: 'project_integrations' | 'project_env_vars';
  keys: readonly [string, string];
  column: string;
}

/** One sealed value and its row key. */
export interface SealedCell {
  key: [string, string];
  sealed: string;
}

/** SQL for secret_keys, project_integrations and project_env_vars. */
export class SecretsStore {
  readonly #db: Kysely<SecretsTables>;

  constructor(db: Db) {
    this.#db = db.withTables<SecretsTables>();
  }

  /** Runs `fn` in a transaction with a store bound to it. */
  transaction<T>(fn: (store: SecretsStore) => Promise<T>): Promise<T> {
    return this.#db.transaction().execute((tx) => fn(new SecretsStore(tx as unknown as Db)));
  }

  // ── keys ──

  listKeys(): Promise<KeyRow[]> {
    return this.#db.selectFrom('secret_keys').selectAll().orderBy('activated_at').execute();
  }

  /**
   * The active key, share-locked until the transaction ends so a rotation cannot switch keys
   * under a write in progress. Use inside a transaction.
   */
  activeKeyForShare(): Promise<KeyRow | undefined> {
    return this.#db
      .selectFrom('secret_keys')
      .selectAll()
      .where('status', '=', 'active')
      .forShare()
      .executeTakeFirst();
  }

  activeKey(): Promise<KeyRow | undefined> {
    return this.#db
      .selectFrom('secret_keys')
      .selectAll()
      .where('status', '=', 'active')
      .executeTakeFirst();
  }

  /** Makes `id` the active key when none is (first start); false when another was first. */
  async insertActiveIfNone(id: string): Promise<boolean> {
    const result = await sql`INSERT INTO secret_keys (id, status) VALUES (${id}, 'active')
      ON CONFLICT DO NOTHING`.execute(this.#db);
    return (result.numAffectedRows ?? 0n) > 0n;
  }

  /** Locks the active key exclusively (rotation). Use inside a transaction. */
  lockActiveKey(): Promise<KeyRow | undefined> {
    return this.#db
      .selectFrom('secret_keys')
      .selectAll()
      .where('status', '=', 'active')
      .forUpdate()
      .executeTakeFirst();
  }

  async setKeyStatus(id: string, status: KeyStatus): Promise<void> {
    await this.#db
      .updateTable('secret_keys')
      .set({
        status,
        ...(status === 'retiring' ? { retiring_at: new Date() } : {}),
        ...(status === 'retired' ? { retired_at: new Date() } : {}),
      })
      .where('id', '=', id)
      .execute();
  }

  async insertKey(id: string, status: KeyStatus): Promise<void> {
    await this.#db
      .insertInto('secret_keys')
      .values({ id, status, retiring_at: null, retired_at: null })
      .execute();
  }

  // ── integrations ──

  listIntegrations(projectId: string): Promise<IntegrationRow[]> {
    return this.#db
      .selectFrom('project_integrations')
      .selectAll()
      .where('project_id', '=', projectId)
      .orderBy('service_name')
      .execute();
  }

  findIntegration(
    projectId: string,
    service: string,
    lock = false,
  ): Promise<IntegrationRow | undefined> {
    let query = this.#db
      .selectFrom('project_integrations')
      .selectAll()
      .where('project_id', '=', projectId)
      .where('service_name', '=', service);
    if (lock) query = query.forUpdate();
    return query.executeTakeFirst();
  }

  upsertIntegration(row: {
    projectId: string;
    userId: string;
    service: string;
    serviceType: string;
    configuration: unknown;
    apiKeySealed: string | null;
    apiKeyLast4: string | null;
    webhookUrl: string | null;
    webhookSecretSealed: string | null;
    active: boolean;
  }): Promise<IntegrationRow> {
    const values = {
      user_id: row.userId,
      service_type: row.serviceType,
      configuration: JSON.stringify(row.configuration),
      api_key_encrypted: row.apiKeySealed,
      api_key_last4: row.apiKeyLast4,
      webhook_url: row.webhookUrl,
      webhook_secret_encrypted: row.webhookSecretSealed,
      is_active: row.active,
      is_configured: row.apiKeySealed !== null,
    };
    return this.#db
      .insertInto('project_integrations')
      .values({
        project_id: row.projectId,
        service_name: row.service,
        last_test_result: null,
        last_tested_at: null,
        last_request_at: null,
        last_error_at: null,
        ...values,
      })
      .onConflict((oc) => oc.columns(['project_id', 'service_name']).doUpdateSet(values))
      .returningAll()
      .executeTakeFirstOrThrow();
  }

  async deleteIntegration(projectId: string, service: string): Promise<boolean> {
    const result = await this.#db
      .deleteFrom('project_integrations')
      .where('project_id', '=', projectId)
      .where('service_name', '=', service)
      .executeTakeFirst();
    return result.numDeletedRows > 0n;
  }

  setTestResult(
    projectId: string,
    service: string,
    result: unknown,
  ): Promise<IntegrationRow | undefined> {
    return this.#db
      .updateTable('project_integrations')
      .set({ last_test_result: JSON.stringify(result), last_tested_at: new Date() })
      .where('project_id', '=', projectId)
      .where('service_name', '=', service)
      .returningAll()
      .executeTakeFirst();
  }

  async countUsage(projectId: string, service: string, ok: boolean): Promise<void> {
    await this.#db
      .updateTable('project_integrations')
      .set((eb) =>
        ok
          ? { request_count: eb('request_count', '+', 1), last_request_at: new Date() }
          : {
              request_count: eb('request_count', '+', 1),
              last_request_at: new Date(),
              error_count: eb('error_count', '+', 1),
              last_error_at: new Date(),
            },
      )
      .where('project_id', '=', projectId)
      .where('service_name', '=', service)
      .execute();
  }

  // ── environment ──

  listEnvVars(projectId: string): Promise<EnvVarRow[]> {
    return this.#db
      .selectFrom('project_env_vars')
      .selectAll()
      .where('project_id', '=', projectId)
      .orderBy('name')
      .execute();
  }

  async envVarNames(projectId: string): Promise<string[]> {
    const rows = await this.#db
      .selectFrom('project_env_vars')
      .select('name')
      .where('project_id', '=', projectId)
      .orderBy('name')
      .execute();
    return rows.map((r) => r.name);
  }

  async upsertEnvVar(
    projectId: string,
    name: string,
    sealed: string,
    userId: string,
  ): Promise<void> {
    await this.#db
      .insertInto('project_env_vars')
      .values({
        project_id: projectId,
        name,
        value_encrypted: sealed,
        created_by: userId,
        updated_by: userId,
      })
      .onConflict((oc) =>
        oc
          .columns(['project_id', 'name'])
          .doUpdateSet({ value_encrypted: sealed, updated_by: userId }),
      )
      .execute();
  }

  async deleteEnvVars(projectId: string, names: string[]): Promise<number> {
    if (names.length === 0) return 0;
    const result = await this.#db
      .deleteFrom('project_env_vars')
      .where('project_id', '=', projectId)
      .where('name', 'in', names)
      .executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  /** Serialises writers of one project's environment (transaction-scoped advisory lock). */
  async lockProjectEnvironment(projectId: string): Promise<void> {
    await sql`SELECT pg_advisory_xact_lock(hashtext('vaporform.env:' || ${projectId}))`.execute(
      this.#db,
    );
  }

  // ── sealed columns, generically (key rotation) ──

  /**
   * Up to `limit` cells of `spec` not sealed with `keyId`, in row-key order after `after`.
   */
  async staleCells(
    spec: SealedColumnSpec,
    keyId: string,
    after: [string, string] | undefined,
    limit: number,
  ): Promise<SealedCell[]> {
    const [k1, k2] = spec.keys;
    const col = sql.ref(spec.column);
    const afterClause = after
      ? sql`AND (${sql.ref(k1)}::text, ${sql.ref(k2)}::text) > (${after[0]}, ${after[1]})`
      : sql``;
    const { rows } = await sql<{ k1: string; k2: string; sealed: string }>`
      SELECT ${sql.ref(k1)}::text AS k1, ${sql.ref(k2)}::text AS k2, ${col} AS sealed
      FROM ${sql.table(spec.table)}
      WHERE ${col} IS NOT NULL AND split_part(${col}, ':', 3) <> ${keyId} ${afterClause}
      ORDER BY ${sql.ref(k1)}::text, ${sql.ref(k2)}::text
      LIMIT ${limit}`.execute(this.#db);
    return rows.map((r) => ({ key: [r.k1, r.k2], sealed: r.sealed }));
  }

  /** Replaces a sealed cell only if it still holds `expected` (compare-and-set). */
  async replaceCell(
    spec: SealedColumnSpec,
    key: [string, string],
    expected: string,
    next: string,
  ): Promise<boolean> {
    const [k1, k2] = spec.keys;
    const col = sql.ref(spec.column);
    const result = await sql`
      UPDATE ${sql.table(spec.table)} SET ${col} = ${next}
      WHERE ${sql.ref(k1)}::text = ${key[0]} AND ${sql.ref(k2)}::text = ${key[1]}
        AND ${col} = ${expected}`.execute(this.#db);
    return (result.numAffectedRows ?? 0n) > 0n;
  }

  /** How many cells of `spec` each key id sealed. */
  async countByKey(spec: SealedColumnSpec): Promise<Record<string, number>> {
    const col = sql.ref(spec.column);
    const { rows } = await sql<{ key_id: string; n: number }>`
      SELECT split_part(${col}, ':', 3) AS key_id, count(*)::int AS n
      FROM ${sql.table(spec.table)} WHERE ${col} IS NOT NULL GROUP BY 1`.execute(this.#db);
    return Object.fromEntries(rows.map((r) => [r.key_id, Number(r.n)]));
  }
}
