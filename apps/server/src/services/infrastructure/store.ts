import { sql, type Generated, type Kysely } from 'kysely';
import type { Db } from '../../db/index.ts';

/** A deployment's and a run's status (Terraform Cloud's run model). */
export type InfraStatus =
  'queued' | 'planning' | 'applying' | 'ready' | 'failed' | 'canceled' | 'destroying' | 'destroyed';

/** Statuses in which a run holds the deployment. */
export const ACTIVE_STATUSES: InfraStatus[] = ['queued', 'planning', 'applying', 'destroying'];

export type InfraProvider = 'local' | 'aws' | 'gcp' | 'azure';
export type RunKind = 'apply' | 'destroy' | 'refresh';

interface DeploymentsTable {
  id: Generated<string>;
  project_id: string;
  provider: InfraProvider;
  status: Generated<InfraStatus>;
  variables: Generated<unknown>;
  machines: Generated<unknown>;
  outputs: Generated<unknown>;
  drift: unknown;
  created_by: string | null;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
}

interface RunsTable {
  id: Generated<string>;
  deployment_id: string;
  kind: RunKind;
  status: Generated<InfraStatus>;
  created_by: string | null;
  started_at: Generated<Date>;
  finished_at: Date | null;
  exit_code: number | null;
  summary: unknown;
  error: string | null;
}

interface EventsTable {
  deployment_id: string;
  seq: number;
  run_id: string;
  event: unknown;
  created_at: Generated<Date>;
}

type InfraTables = {
  infra_deployments: DeploymentsTable;
  infra_runs: RunsTable;
  infra_events: EventsTable;
};

/** A deployment row. */
export interface DeploymentRow {
  id: string;
  project_id: string;
  provider: InfraProvider;
  status: InfraStatus;
  variables: unknown;
  machines: unknown;
  outputs: unknown;
  drift: unknown;
  created_by: string | null;
  created_at: Date;
  updated_at: Date;
}

/** A run row. */
export interface RunRow {
  id: string;
  deployment_id: string;
  kind: RunKind;
  status: InfraStatus;
  created_by: string | null;
  started_at: Date;
  finished_at: Date | null;
  exit_code: number | null;
  summary: unknown;
  error: string | null;
}

/** A stored progress event. */
export interface EventRow {
  seq: number;
  run_id: string;
  event: unknown;
}

/** SQL for infra_deployments, infra_runs and infra_events. */
export class InfrastructureStore {
  readonly #db: Kysely<InfraTables>;

  constructor(db: Db) {
    this.#db = db.withTables<InfraTables>();
  }

  async createDeployment(row: {
    projectId: string;
    provider: InfraProvider;
    variables: Record<string, unknown>;
    createdBy: string;
  }): Promise<DeploymentRow> {
    return (await this.#db
      .insertInto('infra_deployments')
      .values({
        project_id: row.projectId,
        provider: row.provider,
        variables: JSON.stringify(row.variables),
        drift: null,
        created_by: row.createdBy,
      })
      .returningAll()
      .executeTakeFirstOrThrow()) as DeploymentRow;
  }

  async findDeployment(id: string): Promise<DeploymentRow | undefined> {
    return (await this.#db
      .selectFrom('infra_deployments')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirst()) as DeploymentRow | undefined;
  }

  async listDeployments(projectId: string): Promise<DeploymentRow[]> {
    return (await this.#db
      .selectFrom('infra_deployments')
      .selectAll()
      .where('project_id', '=', projectId)
      .orderBy('created_at', 'desc')
      .execute()) as DeploymentRow[];
  }

  async updateDeployment(
    id: string,
    patch: Partial<{
      status: InfraStatus;
      variables: unknown;
      machines: unknown;
      outputs: unknown;
      drift: unknown;
    }>,
  ): Promise<void> {
    const values: Record<string, unknown> = { updated_at: sql`now()` };
    for (const [key, value] of Object.entries(patch)) {
      values[key] = key === 'status' || value === null ? value : JSON.stringify(value);
    }
    await this.#db.updateTable('infra_deployments').set(values).where('id', '=', id).execute();
  }

  async createRun(deploymentId: string, kind: RunKind, createdBy: string | null): Promise<RunRow> {
    return (await this.#db
      .insertInto('infra_runs')
      .values({
        deployment_id: deploymentId,
        kind,
        created_by: createdBy,
        finished_at: null,
        exit_code: null,
        summary: null,
        error: null,
      })
      .returningAll()
      .executeTakeFirstOrThrow()) as RunRow;
  }

  async updateRun(
    id: string,
    patch: Partial<{
      status: InfraStatus;
      finished: boolean;
      exit_code: number | null;
      summary: unknown;
      error: string | null;
    }>,
  ): Promise<void> {
    const values: Record<string, unknown> = {};
    if (patch.status) values.status = patch.status;
    if (patch.finished) values.finished_at = sql`now()`;
    if (patch.exit_code !== undefined) values.exit_code = patch.exit_code;
    if (patch.summary !== undefined) values.summary = JSON.stringify(patch.summary);
    if (patch.error !== undefined) values.error = patch.error;
    await this.#db.updateTable('infra_runs').set(values).where('id', '=', id).execute();
  }

  async lastRun(deploymentId: string): Promise<RunRow | undefined> {
    return (await this.#db
      .selectFrom('infra_runs')
      .selectAll()
      .where('deployment_id', '=', deploymentId)
      .orderBy('started_at', 'desc')
      .limit(1)
      .executeTakeFirst()) as RunRow | undefined;
  }

  /** A deployment's runs, newest first. */
  async runs(deploymentId: string, limit: number): Promise<RunRow[]> {
    return (await this.#db
      .selectFrom('infra_runs')
      .selectAll()
      .where('deployment_id', '=', deploymentId)
      .orderBy('started_at', 'desc')
      .orderBy('id', 'desc')
      .limit(limit)
      .execute()) as RunRow[];
  }

  /** Runs left active by a server that stopped mid-run. */
  async activeRuns(): Promise<RunRow[]> {
    return (await this.#db
      .selectFrom('infra_runs')
      .selectAll()
      .where('status', 'in', ACTIVE_STATUSES)
      .execute()) as RunRow[];
  }

  async lastSeq(deploymentId: string): Promise<number> {
    const row = await this.#db
      .selectFrom('infra_events')
      .select((eb) => eb.fn.max('seq').as('seq'))
      .where('deployment_id', '=', deploymentId)
      .executeTakeFirst();
    return Number(row?.seq ?? 0);
  }

  async insertEvent(
    deploymentId: string,
    runId: string,
    seq: number,
    event: unknown,
  ): Promise<void> {
    await this.#db
      .insertInto('infra_events')
      .values({ deployment_id: deploymentId, run_id: runId, seq, event: JSON.stringify(event) })
      .execute();
  }

  async events(deploymentId: string, afterSeq: number, limit = 10_000): Promise<EventRow[]> {
    return (await this.#db
      .selectFrom('infra_events')
      .select(['seq', 'run_id', 'event'])
      .where('deployment_id', '=', deploymentId)
      .where('seq', '>', afterSeq)
      .orderBy('seq')
      .limit(limit)
      .execute()) as EventRow[];
  }

  /** Drops a destroyed deployment's Terraform state (the pg backend's schema). */
  async dropStateSchema(schema: string): Promise<void> {
    await sql`DROP SCHEMA IF EXISTS ${sql.id(schema)} CASCADE`.execute(this.#db);
  }

  /** The state Terraform's pg backend last saved in `schema` (default workspace), if any. */
  async savedState(schema: string): Promise<unknown> {
    if (!(await this.schemaExists(schema))) return undefined;
    const table = await sql<{
      n: number;
    }>`SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = ${schema} AND tablename = 'states'`.execute(
      this.#db,
    );
    if ((table.rows[0]?.n ?? 0) === 0) return undefined;
    const r = await sql<{
      data: string;
    }>`SELECT data FROM ${sql.id(schema, 'states')} WHERE name = 'default'`.execute(this.#db);
    return r.rows[0] ? (JSON.parse(r.rows[0].data) as unknown) : undefined;
  }

  async schemaExists(schema: string): Promise<boolean> {
    const r = await sql<{
      n: number;
    }>`SELECT count(*)::int AS n FROM pg_namespace WHERE nspname = ${schema}`.execute(this.#db);
    return (r.rows[0]?.n ?? 0) > 0;
  }
}
