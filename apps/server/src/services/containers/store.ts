import { sql, type Generated, type Kysely } from 'kysely';
import type { Db } from '../../db/index.ts';

interface InstallationTable {
  singleton: Generated<boolean>;
  installation_id: Generated<string>;
  created_at: Generated<Date>;
}

interface InfrastructureResourcesTable {
  id: Generated<string>;
  project_id: string;
  resource_type: string;
  resource_name: string;
  resource_id: string;
  configuration: unknown;
  status: string;
  health_status: string;
  cpu_usage_percent: string | number | null;
  memory_usage_mb: number | null;
  network_in_bytes: Generated<string | number>;
  network_out_bytes: Generated<string | number>;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
  last_metrics_at: Date | null;
}

type ContainersTables = {
  container_runtime_installation: InstallationTable;
  infrastructure_resources: InfrastructureResourcesTable;
};

/** The container row of a project in infrastructure_resources. */
export interface ContainerResourceRow {
  project_id: string;
  resource_id: string;
  configuration: unknown;
  status: string;
  health_status: string;
  cpu_usage_percent: string | number | null;
  memory_usage_mb: number | null;
  created_at: Date;
  updated_at: Date;
  last_metrics_at: Date | null;
}

const RESOURCE_TYPE = 'container';
const RESOURCE_NAME = 'app';

/**
 * SQL for the containers service: its installation id, and the `container` rows of
 * infrastructure_resources (one per project: what runs, its state and its last sample).
 */
/** The columns a container record is read with. */
const containerColumns = [
  'project_id',
  'resource_id',
  'configuration',
  'status',
  'health_status',
  'cpu_usage_percent',
  'memory_usage_mb',
  'created_at',
  'updated_at',
  'last_metrics_at',
] as const;

export class ContainersStore {
  readonly #db: Kysely<ContainersTables>;

  constructor(db: Db) {
    this.#db = db.withTables<ContainersTables>();
  }

  /** This installation's id, created on first call. */
  async installationId(): Promise<string> {
    await this.#db
      .insertInto('container_runtime_installation')
      .defaultValues()
      .onConflict((oc) => oc.column('singleton').doNothing())
      .execute();
    const row = await this.#db
      .selectFrom('container_runtime_installation')
      .select('installation_id')
      .executeTakeFirstOrThrow();
    return row.installation_id;
  }

  /** Records what runs for a project (a new container id resets the sample). */
  async upsertContainer(row: {
    projectId: string;
    containerId: string;
    status: 'active' | 'stopped' | 'error';
    health: string;
    configuration: Record<string, unknown>;
  }): Promise<void> {
    await this.#db
      .insertInto('infrastructure_resources')
      .values({
        project_id: row.projectId,
        resource_type: RESOURCE_TYPE,
        resource_name: RESOURCE_NAME,
        resource_id: row.containerId,
        configuration: JSON.stringify(row.configuration),
        status: row.status,
        health_status: row.health,
      })
      .onConflict((oc) =>
        oc.columns(['project_id', 'resource_type', 'resource_name']).doUpdateSet({
          resource_id: row.containerId,
          configuration: JSON.stringify(row.configuration),
          status: row.status,
          health_status: row.health,
          created_at: sql<Date>`CASE WHEN infrastructure_resources.resource_id = ${row.containerId}
            THEN infrastructure_resources.created_at ELSE now() END`,
        }),
      )
      .execute();
  }

  /** Updates the state columns of a project's container row, if there is one. */
  async setContainerState(
    projectId: string,
    patch: { status?: 'active' | 'stopped' | 'error'; health?: string },
  ): Promise<void> {
    if (patch.status === undefined && patch.health === undefined) return;
    await this.#db
      .updateTable('infrastructure_resources')
      .set({
        ...(patch.status !== undefined ? { status: patch.status } : {}),
        ...(patch.health !== undefined ? { health_status: patch.health } : {}),
      })
      .where('project_id', '=', projectId)
      .where('resource_type', '=', RESOURCE_TYPE)
      .where('resource_name', '=', RESOURCE_NAME)
      .execute();
  }

  /** Stores one resource sample. */
  async recordSample(
    projectId: string,
    sample: {
      cpuPercent: number;
      memoryMb: number;
      networkInBytes: number;
      networkOutBytes: number;
    },
  ): Promise<void> {
    await this.#db
      .updateTable('infrastructure_resources')
      .set({
        cpu_usage_percent: Math.min(9999, Math.round(sample.cpuPercent * 100) / 100),
        memory_usage_mb: Math.round(sample.memoryMb),
        network_in_bytes: Math.round(sample.networkInBytes),
        network_out_bytes: Math.round(sample.networkOutBytes),
        last_metrics_at: new Date(),
      })
      .where('project_id', '=', projectId)
      .where('resource_type', '=', RESOURCE_TYPE)
      .where('resource_name', '=', RESOURCE_NAME)
      .execute();
  }

  async findContainer(projectId: string): Promise<ContainerResourceRow | undefined> {
    return this.#db
      .selectFrom('infrastructure_resources')
      .select(containerColumns)
      .where('project_id', '=', projectId)
      .where('resource_type', '=', RESOURCE_TYPE)
      .where('resource_name', '=', RESOURCE_NAME)
      .executeTakeFirst();
  }

  async findContainers(projectIds: string[]): Promise<ContainerResourceRow[]> {
    if (projectIds.length === 0) return [];
    return this.#db
      .selectFrom('infrastructure_resources')
      .select(containerColumns)
      .where('project_id', 'in', projectIds)
      .where('resource_type', '=', RESOURCE_TYPE)
      .where('resource_name', '=', RESOURCE_NAME)
      .execute();
  }
}
