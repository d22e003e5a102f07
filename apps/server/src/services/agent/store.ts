import { sql, type Generated, type Kysely } from 'kysely';
import type { Db } from '../../db/index.ts';

interface TokensTable {
  token_hash: string;
  deployment_id: string;
  machine: string;
  expires_at: Date;
  used_at: Date | null;
  created_at: Generated<Date>;
}

interface MachinesTable {
  deployment_id: string;
  machine: string;
  credential_hash: string;
  enrolled_at: Generated<Date>;
  connected_at: Date | null;
  last_seen_at: Date | null;
}

interface CommandsTable {
  id: Generated<string>;
  deployment_id: string;
  user_id: string | null;
  command: string;
  args: unknown;
  machines: unknown;
  results: Generated<unknown>;
  created_at: Generated<Date>;
  finished_at: Date | null;
}

interface DeploysTable {
  id: Generated<string>;
  deployment_id: string;
  user_id: string | null;
  release: string;
  sha256: string | null;
  status: Generated<DeployStatus>;
  results: Generated<unknown>;
  created_at: Generated<Date>;
  finished_at: Date | null;
}

/** A deploy's overall status. */
export type DeployStatus = 'running' | 'succeeded' | 'failed' | 'partial';

type AgentTables = {
  agent_enrollment_tokens: TokensTable;
  agent_machines: MachinesTable;
  agent_commands: CommandsTable;
  agent_deploys: DeploysTable;
};

/** A recorded command with its per-machine results. */
export interface CommandRow {
  id: string;
  deployment_id: string;
  user_id: string | null;
  command: string;
  args: unknown;
  machines: unknown;
  results: unknown;
  created_at: Date;
  finished_at: Date | null;
}

/** A recorded deploy. */
export interface DeployRow {
  id: string;
  deployment_id: string;
  user_id: string | null;
  release: string;
  sha256: string | null;
  status: DeployStatus;
  results: unknown;
  created_at: Date;
  finished_at: Date | null;
}

/** SQL for the agent's tables (migration 100). Secrets are stored only as sha256 hex. */
export class AgentStore {
  readonly #db: Kysely<AgentTables>;

  constructor(db: Db) {
    this.#db = db.withTables<AgentTables>();
  }

  async insertToken(row: {
    hash: string;
    deploymentId: string;
    machine: string;
    expiresAt: Date;
  }): Promise<void> {
    await this.#db
      .insertInto('agent_enrollment_tokens')
      .values({
        token_hash: row.hash,
        deployment_id: row.deploymentId,
        machine: row.machine,
        expires_at: row.expiresAt,
        used_at: null,
      })
      .execute();
  }

  /**
   * Uses a token once: marks it used when it is unused and unexpired, and installs the new
   * credential hash for its machine in the same transaction. @returns the machine, or undefined.
   */
  async enroll(
    tokenHash: string,
    credentialHash: string,
  ): Promise<{ deploymentId: string; machine: string } | undefined> {
    return this.#db.transaction().execute(async (tx) => {
      const used = await tx
        .updateTable('agent_enrollment_tokens')
        .set({ used_at: sql`now()` })
        .where('token_hash', '=', tokenHash)
        .where('used_at', 'is', null)
        .where('expires_at', '>', sql<Date>`now()`)
        .returning(['deployment_id', 'machine'])
        .executeTakeFirst();
      if (!used) return undefined;
      await tx
        .insertInto('agent_machines')
        .values({
          deployment_id: used.deployment_id,
          machine: used.machine,
          credential_hash: credentialHash,
          connected_at: null,
          last_seen_at: null,
        })
        .onConflict((oc) =>
          oc.columns(['deployment_id', 'machine']).doUpdateSet({
            credential_hash: credentialHash,
            enrolled_at: sql`now()`,
          }),
        )
        .execute();
      // Older unused tokens of the machine are spent too.
      await tx
        .updateTable('agent_enrollment_tokens')
        .set({ used_at: sql`now()` })
        .where('deployment_id', '=', used.deployment_id)
        .where('machine', '=', used.machine)
        .where('used_at', 'is', null)
        .execute();
      return { deploymentId: used.deployment_id, machine: used.machine };
    });
  }

  async machineByCredential(
    credentialHash: string,
  ): Promise<{ deploymentId: string; machine: string } | undefined> {
    const row = await this.#db
      .selectFrom('agent_machines')
      .select(['deployment_id', 'machine'])
      .where('credential_hash', '=', credentialHash)
      .executeTakeFirst();
    return row ? { deploymentId: row.deployment_id, machine: row.machine } : undefined;
  }

  async touch(deploymentId: string, machine: string, connected: boolean): Promise<void> {
    await this.#db
      .updateTable('agent_machines')
      .set(
        connected
          ? { connected_at: sql`now()`, last_seen_at: sql`now()` }
          : { last_seen_at: sql`now()` },
      )
      .where('deployment_id', '=', deploymentId)
      .where('machine', '=', machine)
      .execute();
  }

  /**
   * The enrolled machines of a deployment and whether their agent is connected (to any
   * instance): connected since it was last seen going away.
   */
  async connectedStates(deploymentId: string): Promise<Map<string, boolean>> {
    const rows = await this.#db
      .selectFrom('agent_machines')
      .select([
        'machine',
        sql<boolean>`coalesce(connected_at >= last_seen_at, false)`.as('connected'),
      ])
      .where('deployment_id', '=', deploymentId)
      .execute();
    return new Map(rows.map((r) => [r.machine, r.connected]));
  }

  /** Names of the machines of a deployment that enrolled. */
  async enrolled(deploymentId: string): Promise<Set<string>> {
    const rows = await this.#db
      .selectFrom('agent_machines')
      .select('machine')
      .where('deployment_id', '=', deploymentId)
      .execute();
    return new Set(rows.map((r) => r.machine));
  }

  async insertCommand(row: {
    deploymentId: string;
    userId: string;
    command: string;
    args: string[] | undefined;
    machines: string[];
  }): Promise<string> {
    const r = await this.#db
      .insertInto('agent_commands')
      .values({
        deployment_id: row.deploymentId,
        user_id: row.userId,
        command: row.command,
        args: row.args ? JSON.stringify(row.args) : null,
        machines: JSON.stringify(row.machines),
        finished_at: null,
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    return r.id;
  }

  async finishCommand(id: string, results: unknown): Promise<void> {
    await this.#db
      .updateTable('agent_commands')
      .set({ results: JSON.stringify(results), finished_at: sql`now()` })
      .where('id', '=', id)
      .execute();
  }

  async listCommands(deploymentId: string, limit: number): Promise<CommandRow[]> {
    return (await this.#db
      .selectFrom('agent_commands')
      .selectAll()
      .where('deployment_id', '=', deploymentId)
      .orderBy('created_at', 'desc')
      .limit(limit)
      .execute()) as CommandRow[];
  }

  async insertDeploy(row: {
    deploymentId: string;
    userId: string;
    release: string;
    sha256: string;
  }): Promise<string> {
    const r = await this.#db
      .insertInto('agent_deploys')
      .values({
        deployment_id: row.deploymentId,
        user_id: row.userId,
        release: row.release,
        sha256: row.sha256,
        finished_at: null,
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    return r.id;
  }

  async finishDeploy(id: string, status: DeployStatus, results: unknown): Promise<void> {
    await this.#db
      .updateTable('agent_deploys')
      .set({ status, results: JSON.stringify(results), finished_at: sql`now()` })
      .where('id', '=', id)
      .execute();
  }

  async listDeploys(deploymentId: string, limit: number): Promise<DeployRow[]> {
    return (await this.#db
      .selectFrom('agent_deploys')
      .selectAll()
      .where('deployment_id', '=', deploymentId)
      .orderBy('created_at', 'desc')
      .limit(limit)
      .execute()) as DeployRow[];
  }
}
