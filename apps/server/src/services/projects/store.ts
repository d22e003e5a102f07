import { sql, type ColumnType, type Generated, type Kysely, type Selectable } from 'kysely';
import type { Db } from '../../db/index.ts';
import type { Role } from './access.ts';

type GrantableRole = Exclude<Role, 'owner'>;

/** jsonb: read as parsed JSON, written as JSON text. */
type Json = ColumnType<unknown, string, string>;

interface ProjectsTable {
  id: Generated<string>;
  user_id: string;
  name: string;
  description: string;
  functionality: string | null;
  template_id: string | null;
  architecture_type: string;
  tech_stack: Json;
  config: Json;
  status: string;
  status_reason: string | null;
  health_status: Generated<string>;
  container_id: string | null;
  service_url: string | null;
  allocated_port: number | null;
  memory_limit_mb: Generated<number>;
  cpu_limit_percent: Generated<number>;
  storage_limit_mb: Generated<number>;
  total_files: Generated<number>;
  total_size_bytes: Generated<number>;
  last_activity_at: Generated<Date>;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
  forked_from: Generated<string | null>;
  forked_from_checkpoint: Generated<string | null>;
}

interface ProjectMembersTable {
  project_id: string;
  user_id: string;
  role: Role;
  added_by: string | null;
  created_at: Generated<Date>;
}

interface ProjectInvitationsTable {
  id: Generated<string>;
  project_id: string;
  email: string;
  role: GrantableRole;
  invited_by: string | null;
  created_at: Generated<Date>;
  accepted_at: Date | null;
  accepted_by: string | null;
  revoked_at: Date | null;
  revoked_by: string | null;
}

type ProjectsTables = {
  projects: ProjectsTable;
  project_members: ProjectMembersTable;
  project_invitations: ProjectInvitationsTable;
};

export type ProjectRow = Selectable<ProjectsTable>;
export type MemberRow = Selectable<ProjectMembersTable>;
export type InvitationRow = Selectable<ProjectInvitationsTable>;
/** A project as one member sees it. */
export type MemberProjectRow = Omit<ProjectRow, 'forked_from' | 'forked_from_checkpoint'> & {
  role: Role;
};

export const ownerNameConstraint = 'projects_owner_name_key';
export const memberKeyConstraint = 'project_members_pkey';
export const pendingInvitationConstraint = 'project_invitations_pending_key';

const projectColumns = [
  'p.id',
  'p.user_id',
  'p.name',
  'p.description',
  'p.functionality',
  'p.template_id',
  'p.architecture_type',
  'p.tech_stack',
  'p.config',
  'p.status',
  'p.status_reason',
  'p.health_status',
  'p.container_id',
  'p.service_url',
  'p.allocated_port',
  'p.memory_limit_mb',
  'p.cpu_limit_percent',
  'p.storage_limit_mb',
  'p.total_files',
  'p.total_size_bytes',
  'p.last_activity_at',
  'p.created_at',
  'p.updated_at',
] as const;

/**
 * SQL for projects and project_members. Construct it over a transaction to run several
 * calls atomically.
 */
export class ProjectsStore {
  readonly #db: Kysely<ProjectsTables>;

  constructor(db: Db) {
    this.#db = db.withTables<ProjectsTables>();
  }

  /**
   * Names the actor for the database triggers that write project_activity. Only meaningful
   * inside a transaction (the settings are transaction-local).
   */
  async setActor(actorId: string, source: 'user' | 'claude' | 'system'): Promise<void> {
    await sql`SELECT set_config('vaporform.actor_id', ${actorId}, true), set_config('vaporform.source', ${source}, true)`.execute(
      this.#db,
    );
  }

  insertProject(p: {
    ownerId: string;
    name: string;
    description: string;
    functionality: string | null;
    templateId: string | null;
    architecture: string;
    techStack: unknown;
    config: unknown;
    status: string;
    forkedFrom?: string;
    forkedFromCheckpoint?: string | null;
  }): Promise<ProjectRow> {
    return this.#db
      .insertInto('projects')
      .values({
        user_id: p.ownerId,
        name: p.name,
        description: p.description,
        functionality: p.functionality,
        template_id: p.templateId,
        architecture_type: p.architecture,
        tech_stack: JSON.stringify(p.techStack),
        config: JSON.stringify(p.config),
        status: p.status,
        status_reason: null,
        container_id: null,
        service_url: null,
        allocated_port: null,
        ...(p.forkedFrom
          ? { forked_from: p.forkedFrom, forked_from_checkpoint: p.forkedFromCheckpoint ?? null }
          : {}),
      })
      .returningAll()
      .executeTakeFirstOrThrow();
  }

  /** The project with `userId`'s role, or undefined when they are not a member. */
  findForMember(projectId: string, userId: string): Promise<MemberProjectRow | undefined> {
    return this.#db
      .selectFrom('projects as p')
      .innerJoin('project_members as m', (j) =>
        j.onRef('m.project_id', '=', 'p.id').on('m.user_id', '=', userId),
      )
      .select([...projectColumns, 'm.role'])
      .where('p.id', '=', projectId)
      .executeTakeFirst();
  }

  /** Projects `userId` is a member of, newest first, optionally matching `q` in name/description. */
  listForMember(userId: string, q?: string): Promise<MemberProjectRow[]> {
    let query = this.#db
      .selectFrom('projects as p')
      .innerJoin('project_members as m', (j) =>
        j.onRef('m.project_id', '=', 'p.id').on('m.user_id', '=', userId),
      )
      .select([...projectColumns, 'm.role']);
    if (q) {
      const pattern = `%${q.replace(/[\\%_]/g, '\\$&')}%`;
      query = query.where((eb) =>
        eb.or([eb('p.name', 'ilike', pattern), eb('p.description', 'ilike', pattern)]),
      );
    }
    return query.orderBy('p.created_at', 'desc').orderBy('p.id', 'desc').execute();
  }

  /** Reads a project and locks its row until the transaction ends. */
  lockProject(projectId: string): Promise<ProjectRow | undefined> {
    return this.#db
      .selectFrom('projects')
      .selectAll()
      .where('id', '=', projectId)
      .forUpdate()
      .executeTakeFirst();
  }

  updateProject(
    projectId: string,
    changes: Partial<{
      name: string;
      description: string;
      functionality: string | null;
      architecture_type: string;
      tech_stack: unknown;
      config: unknown;
    }>,
  ): Promise<ProjectRow> {
    const { tech_stack, config, ...plain } = changes;
    return this.#db
      .updateTable('projects')
      .set({
        ...plain,
        ...(tech_stack !== undefined ? { tech_stack: JSON.stringify(tech_stack) } : {}),
        ...(config !== undefined ? { config: JSON.stringify(config) } : {}),
      })
      .where('id', '=', projectId)
      .returningAll()
      .executeTakeFirstOrThrow();
  }

  /** The project row, whoever asks (internal use only: no membership check). */
  findById(projectId: string): Promise<ProjectRow | undefined> {
    return this.#db
      .selectFrom('projects')
      .selectAll()
      .where('id', '=', projectId)
      .executeTakeFirst();
  }

  /** Ids of projects in any of `statuses`, or of every project when none is given. */
  async listIds(statuses?: string[]): Promise<string[]> {
    let query = this.#db.selectFrom('projects').select('id');
    if (statuses?.length) query = query.where('status', 'in', statuses);
    return (await query.execute()).map((r) => r.id);
  }

  async setRuntimeState(
    projectId: string,
    changes: Partial<{
      status: string;
      status_reason: string | null;
      health_status: string;
      container_id: string | null;
      service_url: string | null;
      allocated_port: number | null;
    }>,
  ): Promise<ProjectRow | undefined> {
    return this.#db
      .updateTable('projects')
      .set(changes)
      .where('id', '=', projectId)
      .returningAll()
      .executeTakeFirst();
  }

  async deleteProject(projectId: string): Promise<boolean> {
    const result = await this.#db
      .deleteFrom('projects')
      .where('id', '=', projectId)
      .executeTakeFirst();
    return result.numDeletedRows > 0n;
  }

  async countWithStatus(status: string): Promise<number> {
    const row = await this.#db
      .selectFrom('projects')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('status', '=', status)
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  insertMember(m: {
    projectId: string;
    userId: string;
    role: Role;
    addedBy: string | null;
  }): Promise<MemberRow> {
    return this.#db
      .insertInto('project_members')
      .values({ project_id: m.projectId, user_id: m.userId, role: m.role, added_by: m.addedBy })
      .returningAll()
      .executeTakeFirstOrThrow();
  }

  listMembers(projectId: string): Promise<MemberRow[]> {
    return this.#db
      .selectFrom('project_members')
      .selectAll()
      .where('project_id', '=', projectId)
      .orderBy('created_at', 'asc')
      .execute();
  }

  findMember(projectId: string, userId: string): Promise<MemberRow | undefined> {
    return this.#db
      .selectFrom('project_members')
      .selectAll()
      .where('project_id', '=', projectId)
      .where('user_id', '=', userId)
      .executeTakeFirst();
  }

  /** Changes a role only if it is still `from` (a concurrent change makes this undefined). */
  changeMemberRole(
    projectId: string,
    userId: string,
    from: Role,
    to: Role,
  ): Promise<MemberRow | undefined> {
    return this.#db
      .updateTable('project_members')
      .set({ role: to })
      .where('project_id', '=', projectId)
      .where('user_id', '=', userId)
      .where('role', '=', from)
      .returningAll()
      .executeTakeFirst();
  }

  /** Removes a membership only if its role is still `role`. */
  async removeMember(projectId: string, userId: string, role: Role): Promise<boolean> {
    const result = await this.#db
      .deleteFrom('project_members')
      .where('project_id', '=', projectId)
      .where('user_id', '=', userId)
      .where('role', '=', role)
      .executeTakeFirst();
    return result.numDeletedRows > 0n;
  }

  insertInvitation(i: {
    projectId: string;
    email: string;
    role: GrantableRole;
    invitedBy: string;
  }): Promise<InvitationRow> {
    return this.#db
      .insertInto('project_invitations')
      .values({
        project_id: i.projectId,
        email: i.email,
        role: i.role,
        invited_by: i.invitedBy,
        accepted_at: null,
        accepted_by: null,
        revoked_at: null,
        revoked_by: null,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
  }

  /** A project's pending invitations, oldest first. */
  listPendingInvitations(projectId: string): Promise<InvitationRow[]> {
    return this.#db
      .selectFrom('project_invitations')
      .selectAll()
      .where('project_id', '=', projectId)
      .where('accepted_at', 'is', null)
      .where('revoked_at', 'is', null)
      .orderBy('created_at', 'asc')
      .orderBy('id', 'asc')
      .execute();
  }

  findPendingInvitation(projectId: string, id: string): Promise<InvitationRow | undefined> {
    return this.#db
      .selectFrom('project_invitations')
      .selectAll()
      .where('project_id', '=', projectId)
      .where('id', '=', id)
      .where('accepted_at', 'is', null)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
  }

  /** Revokes an invitation if it is still pending with `role` (undefined otherwise). */
  revokeInvitation(
    projectId: string,
    id: string,
    role: GrantableRole,
    revokedBy: string,
  ): Promise<InvitationRow | undefined> {
    return this.#db
      .updateTable('project_invitations')
      .set({ revoked_at: sql<Date>`now()`, revoked_by: revokedBy })
      .where('project_id', '=', projectId)
      .where('id', '=', id)
      .where('role', '=', role)
      .where('accepted_at', 'is', null)
      .where('revoked_at', 'is', null)
      .returningAll()
      .executeTakeFirst();
  }

  /**
   * Marks every pending invitation of `email` accepted by `userId` and returns them; rows
   * another transaction settled meanwhile are not returned (the update locks them).
   */
  acceptInvitations(email: string, userId: string): Promise<InvitationRow[]> {
    return this.#db
      .updateTable('project_invitations')
      .set({ accepted_at: sql<Date>`now()`, accepted_by: userId })
      .where('email', '=', email)
      .where('accepted_at', 'is', null)
      .where('revoked_at', 'is', null)
      .returningAll()
      .execute();
  }

  /** Adds a membership unless the user already has one; undefined when they had. */
  insertMemberIfAbsent(m: {
    projectId: string;
    userId: string;
    role: Role;
    addedBy: string | null;
  }): Promise<MemberRow | undefined> {
    return this.#db
      .insertInto('project_members')
      .values({ project_id: m.projectId, user_id: m.userId, role: m.role, added_by: m.addedBy })
      .onConflict((oc) => oc.columns(['project_id', 'user_id']).doNothing())
      .returningAll()
      .executeTakeFirst();
  }
}
