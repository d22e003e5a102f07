import { sql } from 'kysely';
import { errors, isUniqueViolation } from '../../common/errors.ts';
import type { Logger } from '../../common/logger.ts';
import type { Db } from '../../db/index.ts';
import type { ActivityService } from '../activity/index.ts';
import { normaliseEmail, type AuthService, type PublicUser } from '../auth/index.ts';
import type { Metrics } from '../monitoring/index.ts';
import type { EventBus } from '../../common/bus.ts';
import {
  architectures,
  type Architecture,
  type TechStack,
  type TemplatesService,
} from '../templates/index.ts';
import { roleAtLeast, roles, type Role } from './access.ts';
import {
  memberKeyConstraint,
  ownerNameConstraint,
  pendingInvitationConstraint,
  ProjectsStore,
  type InvitationRow,
  type MemberProjectRow,
  type MemberRow,
  type ProjectRow,
} from './store.ts';

export type ProjectStatus = 'creating' | 'running' | 'stopped' | 'error' | 'archived';
export type ProjectHealth = 'healthy' | 'unhealthy' | 'starting' | 'unknown';

/** What a project is built from (seeds/000 `ProjectConfig`), plus the person's own words. */
export interface ProjectConfig extends TechStack {
  /** Free text: what the app should do. */
  functionality?: string;
}

/** A project as one member sees it (API.md `project`). */
export interface Project {
  id: string;
  name: string;
  description: string;
  type: Architecture;
  status: ProjectStatus;
  config: ProjectConfig;
  /** The caller's role. */
  role: Role;
  templateId?: string;
  ownerId: string;
  health: ProjectHealth;
  containerId?: string;
  serviceUrl?: string;
  previewUrl?: string;
  totalFiles: number;
  totalSizeBytes: number;
  lastActivityAt: string;
  createdAt: string;
  updatedAt: string;
}

/** A member of a project with their public profile. */
export interface Member {
  userId: string;
  email: string;
  name: string;
  username: string;
  role: Role;
  addedAt: string;
}

/** A role that can be given to someone (there is one owner, the creator). */
export type GrantableRole = Exclude<Role, 'owner'>;

/** A pending invitation of an email that has no account yet. */
export interface Invitation {
  id: string;
  /** Normalised as accounts store emails (trimmed, lower case). */
  email: string;
  role: GrantableRole;
  /** Who invited; absent when that account is gone. */
  invitedBy?: string;
  createdAt: string;
}

/** What adding by email did: the account became a member, or the email was invited. */
export type AddMemberResult = { member: Member } | { invitation: Invitation };

export interface CreateProjectInput {
  name: string;
  description?: string;
  type?: Architecture;
  templateId?: string;
  config?: ProjectConfig;
}

export interface UpdateProjectInput {
  name?: string;
  description?: string;
  /** Merged into the current config: objects merge, arrays and values replace. */
  config?: ProjectConfig;
}

/** Runs before a project is deleted; throwing aborts the deletion. */
export type DeleteHook = (project: Project) => Promise<void> | void;

/**
 * Runs after a project is created (template files, container start). A failing hook marks the
 * project `error` with the reason; the project is still created.
 */
export type CreatedHook = (project: Project, context: { userId: string }) => Promise<void> | void;

/** A project's runtime and resource columns, for services that run it (no role attached). */
export interface ProjectRecord {
  id: string;
  name: string;
  ownerId: string;
  templateId?: string;
  type: Architecture;
  status: ProjectStatus;
  statusReason?: string;
  health: ProjectHealth;
  containerId?: string;
  serviceUrl?: string;
  allocatedPort?: number;
  memoryLimitMb: number;
  cpuLimitPercent: number;
  storageLimitMb: number;
  config: ProjectConfig;
}

/** Fields the runtime may change; `null` clears a column. */
export interface RuntimeStatePatch {
  status?: ProjectStatus;
  statusReason?: string | null;
  health?: ProjectHealth;
  containerId?: string | null;
  serviceUrl?: string | null;
  allocatedPort?: number | null;
}

/**
 * A member's access changed: `role` is the new role, or null when the membership is gone
 * (removed, left, or the project deleted). Delivered on every instance.
 */
export interface MembershipChange {
  projectId: string;
  userId: string;
  role: Role | null;
}

/** Where membership changes travel between instances. */
const MEMBERSHIP_CHANNEL = 'projects:membership-changed';

export interface ProjectsServiceDeps {
  db: Db;
  auth: AuthService;
  /** Carries membership changes to every instance (see {@link ProjectsService.onMembershipChanged}). */
  bus: EventBus;
  templates: TemplatesService;
  activity: ActivityService;
  metrics: Metrics;
  log: Logger;
  /** The preview address of a running project, when previews are served. */
  previewUrl?: (projectId: string) => string;
}

/** How long one user's project list is reused (see ProjectsService.list). */
const LIST_CACHE_MS = 1_000;

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Projects, their members and who may do what. Every method that acts for a user checks that
 * user's role itself; non-members are told the project does not exist.
 */
export class ProjectsService {
  readonly #db: Db;
  readonly #store: ProjectsStore;
  readonly #auth: AuthService;
  readonly #templates: TemplatesService;
  readonly #activity: ActivityService;
  readonly #metrics: Metrics;
  readonly #log: Logger;
  readonly #previewUrl: ((projectId: string) => string) | undefined;
  readonly #deleteHooks: DeleteHook[] = [];
  readonly #createdHooks: CreatedHook[] = [];
  readonly #bus: EventBus;
  readonly #membershipListeners = new Set<(change: MembershipChange) => void>();
  #unsubscribe: (() => Promise<void>) | undefined;
  /** userId → that user's project list (no search), for LIST_CACHE_MS; see {@link list}. */
  readonly #lists = new Map<
    string,
    { until: number; projects: Promise<Project[]>; json?: string }
  >();
  /** Bumped by every change: a list read that overlapped a change is not cached. */
  #listGeneration = 0;

  constructor(deps: ProjectsServiceDeps) {
    this.#db = deps.db;
    this.#store = new ProjectsStore(deps.db);
    this.#auth = deps.auth;
    this.#bus = deps.bus;
    this.#templates = deps.templates;
    this.#activity = deps.activity;
    this.#metrics = deps.metrics;
    this.#log = deps.log;
    this.#previewUrl = deps.previewUrl;
  }

  /** Listens for membership changes made by any instance (this one included). */
  async start(): Promise<void> {
    this.#unsubscribe = await this.#bus.subscribe(MEMBERSHIP_CHANNEL, (message) => {
      const change = parseMembershipChange(message);
      if (!change) return;
      // The member's project list changed on whichever instance did it.
      this.#lists.delete(change.userId);
      for (const listener of this.#membershipListeners) {
        try {
          listener(change);
        } catch (err) {
          this.#log.warn({ err }, 'a membership listener failed');
        }
      }
    });
  }

  async stop(): Promise<void> {
    await this.#unsubscribe?.();
    this.#unsubscribe = undefined;
  }

  /**
   * Calls `listener` whenever a member's role changes or a membership ends, on whichever
   * instance it happened, so long-lived connections (sockets, terminals, previews) can close
   * at once instead of at their next periodic check.
   * @returns a function that removes the listener.
   */
  onMembershipChanged(listener: (change: MembershipChange) => void): () => void {
    this.#membershipListeners.add(listener);
    return () => this.#membershipListeners.delete(listener);
  }

  /** Tells every instance; a lost message leaves the periodic re-checks as the fallback. */
  async #announce(changes: MembershipChange[]): Promise<void> {
    for (const change of changes) {
      await this.#bus.publish(MEMBERSHIP_CHANNEL, change).catch((err: unknown) => {
        this.#log.warn({ err, projectId: change.projectId }, 'membership change not announced');
      });
    }
  }

  /** How many projects are running now (the active-projects gauge). */
  countRunning(): Promise<number> {
    return this.#store.countWithStatus('running');
  }

  /** Registers a hook run by {@link delete} before the row goes; returns an unregister function. */
  onDelete(hook: DeleteHook): () => void {
    this.#deleteHooks.push(hook);
    return () => {
      const i = this.#deleteHooks.indexOf(hook);
      if (i >= 0) this.#deleteHooks.splice(i, 1);
    };
  }

  /** Registers a hook run by {@link create} after the project exists, in registration order. */
  onCreated(hook: CreatedHook): void {
    this.#createdHooks.push(hook);
  }

  /** A project by id without any membership check: for runtime services, never for routes. */
  async findById(projectId: string): Promise<ProjectRecord | undefined> {
    if (!uuidPattern.test(projectId)) return undefined;
    const row = await this.#store.findById(projectId);
    return row ? toRecord(row) : undefined;
  }

  /** Counts a successful deploy onto machines: `deployment_count` + 1, `deployed_at` now. */
  async recordDeployment(projectId: string): Promise<void> {
    await sql`UPDATE projects SET deployment_count = deployment_count + 1, deployed_at = now()
      WHERE id = ${projectId}`.execute(this.#db);
  }

  /** Ids of projects with one of `statuses` (all projects when omitted), for reconcilers. */
  listIds(statuses?: ProjectStatus[]): Promise<string[]> {
    return this.#store.listIds(statuses);
  }

  /**
   * Records what the runtime did (status, health, container id, service URL). A status change
   * is logged to the activity log by the database trigger, with source `system`.
   */
  async setRuntimeState(
    projectId: string,
    patch: RuntimeStatePatch,
  ): Promise<ProjectRecord | undefined> {
    return this.#changing(async () => {
      const row = await this.#store.setRuntimeState(projectId, {
        ...(patch.status !== undefined ? { status: patch.status } : {}),
        ...(patch.statusReason !== undefined ? { status_reason: patch.statusReason } : {}),
        ...(patch.health !== undefined ? { health_status: patch.health } : {}),
        ...(patch.containerId !== undefined ? { container_id: patch.containerId } : {}),
        ...(patch.serviceUrl !== undefined ? { service_url: patch.serviceUrl } : {}),
        ...(patch.allocatedPort !== undefined ? { allocated_port: patch.allocatedPort } : {}),
      });
      return row ? toRecord(row) : undefined;
    });
  }

  /**
   * Creates a project owned by `userId`.
   * @throws AppError invalid_request for an unknown templateId, conflict when the owner
   *   already has a project of that name (ignoring case).
   */
  async create(userId: string, input: CreateProjectInput): Promise<Project> {
    return this.#changing(async () => {
      const template =
        input.templateId === undefined ? undefined : await this.#templates.find(input.templateId);
      if (input.templateId !== undefined && !template) {
        throw errors.invalid('Unknown template', [
          { field: 'templateId', message: 'no such template' },
        ]);
      }
      const { functionality, ...choices } = input.config ?? {};
      const templateStack = template?.techStack ?? {};
      const type: Architecture =
        input.type ??
        choices.architecture ??
        (isArchitecture(templateStack.architecture) ? templateStack.architecture : 'monolithic');
      const techStack: TechStack = { ...mergeConfig(templateStack, choices), architecture: type };

      let row: ProjectRow;
      try {
        row = await this.#db.transaction().execute(async (tx) => {
          const store = new ProjectsStore(tx);
          await store.setActor(userId, 'user');
          const project = await store.insertProject({
            ownerId: userId,
            name: input.name,
            description: input.description ?? '',
            functionality: functionality ?? null,
            templateId: template?.id ?? null,
            architecture: type,
            techStack,
            config: input.config ?? {},
            status: 'stopped',
          });
          await store.insertMember({
            projectId: project.id,
            userId,
            role: 'owner',
            addedBy: userId,
          });
          return project;
        });
      } catch (err) {
        if (isUniqueViolation(err, ownerNameConstraint)) throw nameTaken();
        throw err;
      }

      if (template) {
        await this.#templates.recordUse(template.id).catch((err: unknown) => {
          // The template may have been removed meanwhile; the project stands either way.
          this.#log.warn({ err, templateId: template.id }, 'could not count template use');
        });
      }
      this.#metrics.projectsCreated.inc();
      this.#log.info({ projectId: row.id, userId, templateId: template?.id }, 'project created');
      let project = this.#toProject({ ...row, role: 'owner' });
      for (const hook of this.#createdHooks) {
        try {
          await hook(project, { userId });
        } catch (err) {
          const reason = err instanceof Error ? err.message : String(err);
          this.#log.warn({ err, projectId: project.id }, 'project set-up step failed');
          await this.#store.setRuntimeState(project.id, { status: 'error', status_reason: reason });
          break;
        }
      }
      if (this.#createdHooks.length) project = await this.get(project.id, userId);
      return project;
    });
  }

  /**
   * A new project owned by `userId` alone, made from `sourceId` (any member may fork): its
   * description, template and configuration (or `techStack`/`functionality` as they were at a
   * checkpoint), recording where it came from. No set-up hooks run: the caller fills it
   * (files, environment). Logged on both projects.
   * @throws AppError not_found (source), conflict (the caller already has a project of that name).
   */
  async fork(
    sourceId: string,
    userId: string,
    input: {
      name: string;
      checkpointId?: string | null;
      config?: ProjectConfig;
    },
  ): Promise<Project> {
    return this.#changing(async () => {
      await this.requireRole(sourceId, userId, 'viewer');
      const source = await this.#store.findById(sourceId);
      if (!source) throw errors.notFound('project');
      let row: ProjectRow;
      try {
        row = await this.#db.transaction().execute(async (tx) => {
          const store = new ProjectsStore(tx);
          await store.setActor(userId, 'user');
          const at = input.config;
          const { functionality, ...stack } = at ?? {};
          const project = await store.insertProject({
            ownerId: userId,
            name: input.name,
            description: source.description,
            functionality: at ? (functionality ?? null) : source.functionality,
            templateId: source.template_id,
            architecture: source.architecture_type,
            techStack: at ? stack : source.tech_stack,
            config: source.config,
            status: 'stopped',
            forkedFrom: sourceId,
            forkedFromCheckpoint: input.checkpointId ?? null,
          });
          await store.insertMember({
            projectId: project.id,
            userId,
            role: 'owner',
            addedBy: userId,
          });
          for (const [projectId, description] of [
            [project.id, `Forked from ${source.name}`],
            [sourceId, `Forked into ${input.name}`],
          ] as const) {
            await this.#activity.record(
              {
                projectId,
                userId,
                type: 'project_forked',
                description,
                sourceType: 'user',
                metadata: {
                  from: sourceId,
                  to: project.id,
                  ...(input.checkpointId ? { checkpointId: input.checkpointId } : {}),
                },
              },
              tx,
            );
          }
          return project;
        });
      } catch (err) {
        if (isUniqueViolation(err, ownerNameConstraint)) throw nameTaken();
        throw err;
      }
      this.#metrics.projectsCreated.inc();
      this.#log.info({ projectId: row.id, userId, from: sourceId }, 'project forked');
      return this.#toProject({ ...row, role: 'owner' });
    });
  }

  /** Projects `userId` is a member of, newest first; `q` matches name or description. */
  async list(userId: string, opts: { q?: string } = {}): Promise<Project[]> {
    const q = opts.q?.trim();
    if (q) return this.#readList(userId, q);
    // The dashboard polls this: reuse a read for a moment. Changes made through this service
    // drop every cached list at once; file statistics may lag by up to LIST_CACHE_MS.
    const now = Date.now();
    const cached = this.#lists.get(userId);
    if (cached && cached.until > now) return cached.projects;
    const generation = this.#listGeneration;
    const projects = this.#readList(userId);
    this.#lists.set(userId, { until: now + LIST_CACHE_MS, projects });
    try {
      await projects;
    } catch (err) {
      this.#lists.delete(userId);
      throw err;
    }
    if (generation !== this.#listGeneration && this.#lists.get(userId)?.projects === projects) {
      this.#lists.delete(userId);
    }
    return projects;
  }

  /**
   * `{"projects": [...]}` for {@link list} without a search, serialised once per cached read
   * (the dashboard's hot path).
   */
  async listJson(userId: string): Promise<string> {
    const projects = await this.list(userId);
    const entry = this.#lists.get(userId);
    if (entry && (await entry.projects) === projects) {
      return (entry.json ??= JSON.stringify({ projects }));
    }
    return JSON.stringify({ projects });
  }

  async #readList(userId: string, q?: string): Promise<Project[]> {
    return (await this.#store.listForMember(userId, q)).map((r) => this.#toProject(r));
  }

  /** Runs a change, then drops every cached project list (whatever the outcome). */
  async #changing<T>(work: () => Promise<T>): Promise<T> {
    this.#listGeneration++;
    this.#lists.clear();
    try {
      return await work();
    } finally {
      this.#listGeneration++;
      this.#lists.clear();
    }
  }

  /**
   * One project, for a member.
   * @throws AppError not_found when `userId` is not a member.
   */
  async get(projectId: string, userId: string): Promise<Project> {
    return (await this.requireRole(projectId, userId, 'viewer')).project;
  }

  /**
   * The project and `userId`'s role on it, if that role is at least `min`.
   * @throws AppError not_found for non-members and malformed ids (existence is never
   *   revealed), forbidden for members below `min`.
   */
  async requireRole(
    projectId: string,
    userId: string,
    min: Role,
  ): Promise<{ project: Project; role: Role }> {
    if (!uuidPattern.test(projectId) || !uuidPattern.test(userId)) throw errors.notFound('project');
    const row = await this.#store.findForMember(projectId, userId);
    if (!row) throw errors.notFound('project');
    if (!roleAtLeast(row.role, min)) {
      throw errors.forbidden(`This needs the ${min} role or higher; you are ${article(row.role)}`);
    }
    return { project: this.#toProject(row), role: row.role };
  }

  /**
   * Changes name, description or config (admin or owner).
   * @throws AppError not_found, forbidden, conflict on a name the owner already uses.
   */
  async update(projectId: string, userId: string, patch: UpdateProjectInput): Promise<Project> {
    return this.#changing(async () => {
      const { role } = await this.requireRole(projectId, userId, 'admin');
      let row: ProjectRow;
      try {
        row = await this.#db.transaction().execute(async (tx) => {
          const store = new ProjectsStore(tx);
          await store.setActor(userId, 'user');
          const current = await store.lockProject(projectId);
          if (!current) throw errors.notFound('project');
          const changes = planUpdate(current, patch);
          if (Object.keys(changes).length === 0) return current;
          const updated = await store.updateProject(projectId, changes);
          // Renames are logged by the projects trigger; log the other edits here.
          const fields = [
            ...new Set(
              Object.keys(changes)
                .filter((f) => f !== 'name')
                .map(fieldLabel),
            ),
          ];
          if (fields.length > 0) {
            await this.#activity.record(
              {
                projectId,
                userId,
                type: 'project_updated',
                description: `Updated project ${fields.join(' and ')}`,
                sourceType: 'user',
                metadata: { fields },
              },
              tx,
            );
          }
          return updated;
        });
      } catch (err) {
        if (isUniqueViolation(err, ownerNameConstraint)) throw nameTaken();
        throw err;
      }
      return this.#toProject({ ...row, role });
    });
  }

  /**
   * Deletes a project (owner only) after running the {@link onDelete} hooks.
   * @throws AppError not_found, forbidden; whatever a hook throws.
   */
  async delete(projectId: string, userId: string): Promise<void> {
    return this.#changing(async () => {
      const { project } = await this.requireRole(projectId, userId, 'owner');
      for (const hook of this.#deleteHooks) await hook(project);
      const members = await this.#store.listMembers(projectId);
      await this.#store.deleteProject(projectId);
      this.#log.info({ projectId, userId }, 'project deleted');
      await this.#announce(members.map((m) => ({ projectId, userId: m.user_id, role: null })));
    });
  }

  /**
   * Everyone on the project, strongest role first (any member may look).
   * @throws AppError not_found for non-members.
   */
  async listMembers(projectId: string, userId: string): Promise<Member[]> {
    await this.requireRole(projectId, userId, 'viewer');
    const rows = await this.#store.listMembers(projectId);
    const users = new Map(
      (await this.#auth.usersByIds(rows.map((r) => r.user_id))).map((u) => [u.id, u]),
    );
    return rows
      .flatMap((r) => {
        const user = users.get(r.user_id);
        return user ? [toMember(r, user)] : [];
      })
      .sort((a, b) => roles.indexOf(a.role) - roles.indexOf(b.role));
  }

  /**
   * Adds the user with `email` (admin or owner; only the owner may add admins), or, when no
   * account has that email, invites it: the invitation becomes a membership when someone
   * registers with it (see {@link acceptInvitations}).
   * @throws AppError not_found (project), forbidden, conflict when already a member or
   *   already invited.
   */
  async addMember(
    projectId: string,
    actorId: string,
    input: { email: string; role: GrantableRole },
  ): Promise<AddMemberResult> {
    return this.#changing(async () => {
      const { role: actorRole } = await this.requireRole(projectId, actorId, 'admin');
      if (input.role === 'admin' && actorRole !== 'owner') {
        throw errors.forbidden('Only the owner can add admins');
      }
      const user = await this.#auth.userByEmail(input.email);
      if (!user) return { invitation: await this.#invite(projectId, actorId, input) };
      try {
        const row = await this.#db.transaction().execute(async (tx) => {
          const member = await new ProjectsStore(tx).insertMember({
            projectId,
            userId: user.id,
            role: input.role,
            addedBy: actorId,
          });
          await this.#activity.record(
            {
              projectId,
              userId: actorId,
              type: 'member_added',
              description: `Added ${user.email} as ${input.role}`,
              sourceType: 'user',
              metadata: { memberId: user.id, email: user.email, role: input.role },
            },
            tx,
          );
          return member;
        });
        await this.#announce([{ projectId, userId: user.id, role: input.role }]);
        return { member: toMember(row, user) };
      } catch (err) {
        if (isUniqueViolation(err, memberKeyConstraint)) {
          throw errors.conflict('This user is already a member', { field: 'email' });
        }
        throw err;
      }
    });
  }

  async #invite(
    projectId: string,
    actorId: string,
    input: { email: string; role: GrantableRole },
  ): Promise<Invitation> {
    const email = normaliseEmail(input.email);
    let row: InvitationRow;
    try {
      row = await this.#db.transaction().execute(async (tx) => {
        const invitation = await new ProjectsStore(tx).insertInvitation({
          projectId,
          email,
          role: input.role,
          invitedBy: actorId,
        });
        await this.#activity.record(
          {
            projectId,
            userId: actorId,
            type: 'member_invited',
            description: `Invited ${email} as ${input.role}`,
            sourceType: 'user',
            metadata: { invitationId: invitation.id, email, role: input.role },
          },
          tx,
        );
        return invitation;
      });
    } catch (err) {
      if (isUniqueViolation(err, pendingInvitationConstraint)) {
        throw errors.conflict('This email is already invited', { field: 'email' });
      }
      throw err;
    }
    this.#log.info({ projectId, invitationId: row.id }, 'email invited');
    // Someone may have registered with this email between the lookup and the commit, after
    // their registration looked for invitations: accept for them now (accepting is idempotent).
    const user = await this.#auth.userByEmail(email);
    if (user) await this.acceptInvitations(user);
    return toInvitation(row);
  }

  /**
   * Pending invitations of a project, oldest first (any member may look).
   * @throws AppError not_found for non-members.
   */
  async listInvitations(projectId: string, userId: string): Promise<Invitation[]> {
    await this.requireRole(projectId, userId, 'viewer');
    return (await this.#store.listPendingInvitations(projectId)).map(toInvitation);
  }

  /**
   * Revokes a pending invitation (admin or owner; only the owner revokes an admin's).
   * @throws AppError not_found (project, or no such pending invitation), forbidden.
   */
  async revokeInvitation(projectId: string, actorId: string, invitationId: string): Promise<void> {
    const { role: actorRole } = await this.requireRole(projectId, actorId, 'admin');
    const pending = uuidPattern.test(invitationId)
      ? await this.#store.findPendingInvitation(projectId, invitationId)
      : undefined;
    if (!pending) throw errors.notFound('invitation');
    if (pending.role === 'admin' && actorRole !== 'owner') {
      throw errors.forbidden('Only the owner can revoke an admin invitation');
    }
    await this.#db.transaction().execute(async (tx) => {
      const revoked = await new ProjectsStore(tx).revokeInvitation(
        projectId,
        pending.id,
        pending.role,
        actorId,
      );
      if (!revoked) throw errors.notFound('invitation');
      await this.#activity.record(
        {
          projectId,
          userId: actorId,
          type: 'invitation_revoked',
          description: `Revoked the invitation of ${revoked.email}`,
          sourceType: 'user',
          metadata: { invitationId: revoked.id, email: revoked.email, role: revoked.role },
        },
        tx,
      );
    });
  }

  /**
   * Turns every pending invitation of `user`'s email into a membership with the invited
   * role (run when an account is registered; compose.ts wires it to auth). Each becomes
   * `invitation_accepted` in the project's log and is announced like any membership change.
   */
  async acceptInvitations(user: PublicUser): Promise<void> {
    const email = normaliseEmail(user.email);
    const joined = await this.#changing(() =>
      this.#db.transaction().execute(async (tx) => {
        const store = new ProjectsStore(tx);
        const accepted = await store.acceptInvitations(email, user.id);
        const changes: MembershipChange[] = [];
        for (const invitation of accepted) {
          const member = await store.insertMemberIfAbsent({
            projectId: invitation.project_id,
            userId: user.id,
            role: invitation.role,
            addedBy: invitation.invited_by,
          });
          await this.#activity.record(
            {
              projectId: invitation.project_id,
              userId: user.id,
              type: 'invitation_accepted',
              description: member
                ? `${email} joined as ${member.role} (invited)`
                : `${email} accepted an invitation but was already a member`,
              sourceType: 'user',
              metadata: {
                invitationId: invitation.id,
                memberId: user.id,
                email,
                role: member?.role ?? invitation.role,
                ...(invitation.invited_by ? { invitedBy: invitation.invited_by } : {}),
              },
            },
            tx,
          );
          if (member) {
            changes.push({ projectId: invitation.project_id, userId: user.id, role: member.role });
          }
        }
        return changes;
      }),
    );
    if (joined.length === 0) return;
    this.#log.info(
      { userId: user.id, projectIds: joined.map((c) => c.projectId) },
      'invitations accepted',
    );
    await this.#announce(joined);
  }

  /**
   * Changes a member's role (admin or owner; only the owner may grant or take away admin;
   * the owner's own role never changes).
   * @throws AppError not_found (project or member), forbidden, conflict on a concurrent change.
   */
  async changeMemberRole(
    projectId: string,
    actorId: string,
    memberId: string,
    role: GrantableRole,
  ): Promise<Member> {
    return this.#changing(async () => {
      const { role: actorRole } = await this.requireRole(projectId, actorId, 'admin');
      const target = await this.#findMember(projectId, memberId);
      if (target.role === 'owner') throw errors.forbidden("The owner's role cannot be changed");
      if ((target.role === 'admin' || role === 'admin') && actorRole !== 'owner') {
        throw errors.forbidden('Only the owner can grant or take away the admin role');
      }
      const user = await this.#memberUser(memberId);
      if (target.role === role) return toMember(target, user);
      const row = await this.#db.transaction().execute(async (tx) => {
        const changed = await new ProjectsStore(tx).changeMemberRole(
          projectId,
          memberId,
          target.role,
          role,
        );
        if (!changed) throw errors.conflict('The membership changed meanwhile; try again');
        await this.#activity.record(
          {
            projectId,
            userId: actorId,
            type: 'member_role_changed',
            description: `Changed ${user.email} from ${target.role} to ${role}`,
            sourceType: 'user',
            metadata: { memberId, email: user.email, role, previousRole: target.role },
          },
          tx,
        );
        return changed;
      });
      await this.#announce([{ projectId, userId: row.user_id, role }]);
      return toMember(row, user);
    });
  }

  /**
   * Removes a member. Anyone but the owner may leave; admins remove editors and viewers; the
   * owner also removes admins; nobody removes the owner.
   * @throws AppError not_found (project or member), forbidden.
   */
  async removeMember(projectId: string, actorId: string, memberId: string): Promise<void> {
    return this.#changing(async () => {
      const { role: actorRole } = await this.requireRole(projectId, actorId, 'viewer');
      const leaving = memberId.toLowerCase() === actorId.toLowerCase();
      if (leaving && actorRole === 'owner') {
        throw errors.forbidden('The owner cannot leave the project; delete it instead');
      }
      if (!leaving && !roleAtLeast(actorRole, 'admin')) {
        throw errors.forbidden(
          `Removing members needs the admin role or higher; you are ${article(actorRole)}`,
        );
      }
      const target = leaving ? { role: actorRole } : await this.#findMember(projectId, memberId);
      if (target.role === 'owner') throw errors.forbidden('The owner cannot be removed');
      if (target.role === 'admin' && !leaving && actorRole !== 'owner') {
        throw errors.forbidden('Only the owner can remove admins');
      }
      const user = await this.#memberUser(memberId);
      await this.#db.transaction().execute(async (tx) => {
        const removed = await new ProjectsStore(tx).removeMember(projectId, memberId, target.role);
        if (!removed) throw errors.notFound('member');
        await this.#activity.record(
          {
            projectId,
            userId: actorId,
            type: leaving ? 'member_left' : 'member_removed',
            description: leaving ? `${user.email} left the project` : `Removed ${user.email}`,
            sourceType: 'user',
            metadata: { memberId, email: user.email, role: target.role },
          },
          tx,
        );
      });
      await this.#announce([{ projectId, userId: memberId.toLowerCase(), role: null }]);
    });
  }

  async #findMember(projectId: string, memberId: string): Promise<MemberRow> {
    const row = uuidPattern.test(memberId)
      ? await this.#store.findMember(projectId, memberId)
      : undefined;
    if (!row) throw errors.notFound('member');
    return row;
  }

  async #memberUser(userId: string): Promise<PublicUser> {
    const [user] = await this.#auth.usersByIds([userId]);
    if (!user) throw errors.notFound('member');
    return user;
  }

  #toProject(row: MemberProjectRow): Project {
    const stack = isRecord(row.tech_stack) ? (row.tech_stack as TechStack) : {};
    const previewUrl =
      row.status === 'running' && this.#previewUrl ? this.#previewUrl(row.id) : undefined;
    return {
      id: row.id,
      name: row.name,
      description: row.description,
      type: row.architecture_type as Architecture,
      status: row.status as ProjectStatus,
      config: { ...stack, ...(row.functionality ? { functionality: row.functionality } : {}) },
      role: row.role,
      ...(row.template_id ? { templateId: row.template_id } : {}),
      ownerId: row.user_id,
      health: row.health_status as ProjectHealth,
      ...(row.container_id ? { containerId: row.container_id } : {}),
      ...(row.service_url ? { serviceUrl: row.service_url } : {}),
      ...(previewUrl ? { previewUrl } : {}),
      totalFiles: row.total_files,
      totalSizeBytes: row.total_size_bytes,
      lastActivityAt: row.last_activity_at.toISOString(),
      createdAt: row.created_at.toISOString(),
      updatedAt: row.updated_at.toISOString(),
    };
  }
}

type ProjectChanges = Parameters<ProjectsStore['updateProject']>[1];

/** The column changes a PATCH asks for, leaving out what would not change. */
function planUpdate(current: ProjectRow, patch: UpdateProjectInput): ProjectChanges {
  const changes: ProjectChanges = {};
  if (patch.name !== undefined && patch.name !== current.name) changes.name = patch.name;
  if (patch.description !== undefined && patch.description !== current.description) {
    changes.description = patch.description;
  }
  if (patch.config !== undefined) {
    const { functionality, ...choices } = patch.config;
    const currentStack = isRecord(current.tech_stack) ? (current.tech_stack as TechStack) : {};
    const techStack = mergeConfig(currentStack, choices);
    if (JSON.stringify(techStack) !== JSON.stringify(currentStack)) changes.tech_stack = techStack;
    if (techStack.architecture && techStack.architecture !== current.architecture_type) {
      changes.architecture_type = techStack.architecture;
    }
    if (functionality !== undefined && (functionality || null) !== current.functionality) {
      changes.functionality = functionality || null;
    }
    // The config column keeps what people chose (the template's part is in tech_stack).
    if (changes.tech_stack !== undefined || changes.functionality !== undefined) {
      changes.config = mergeConfig(isRecord(current.config) ? current.config : {}, patch.config);
    }
  }
  return changes;
}

/**
 * Merges `patch` into `base`: nested objects merge, arrays and plain values replace,
 * undefined leaves the base value alone.
 */
export function mergeConfig<T extends object>(base: T, patch: object): T {
  const out = { ...base } as Record<string, unknown>;
  for (const [key, value] of Object.entries(patch)) {
    if (value === undefined) continue;
    const prev = out[key];
    out[key] = isRecord(value) && isRecord(prev) ? mergeConfig(prev, value) : value;
  }
  return out as T;
}

function parseMembershipChange(message: unknown): MembershipChange | undefined {
  const m = message as Partial<MembershipChange> | null;
  if (typeof m?.projectId !== 'string' || typeof m.userId !== 'string') return undefined;
  if (m.role !== null && !roles.includes(m.role as Role)) return undefined;
  return { projectId: m.projectId, userId: m.userId, role: m.role ?? null };
}

function toMember(row: MemberRow, user: PublicUser): Member {
  return {
    userId: row.user_id,
    email: user.email,
    name: user.name,
    username: user.username,
    role: row.role,
    addedAt: row.created_at.toISOString(),
  };
}

function toInvitation(row: InvitationRow): Invitation {
  return {
    id: row.id,
    email: row.email,
    role: row.role,
    ...(row.invited_by ? { invitedBy: row.invited_by } : {}),
    createdAt: row.created_at.toISOString(),
  };
}

function nameTaken() {
  return errors.conflict('You already have a project with this name', { field: 'name' });
}

function fieldLabel(column: string): string {
  return column === 'tech_stack' || column === 'architecture_type' || column === 'functionality'
    ? 'config'
    : column;
}

function article(role: Role): string {
  return role === 'owner' || role === 'admin' || role === 'editor' ? `an ${role}` : `a ${role}`;
}

function isArchitecture(value: unknown): value is Architecture {
  return architectures.includes(value as Architecture);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function toRecord(row: ProjectRow): ProjectRecord {
  const stack = isRecord(row.tech_stack) ? (row.tech_stack as TechStack) : {};
  return {
    id: row.id,
    name: row.name,
    ownerId: row.user_id,
    ...(row.template_id ? { templateId: row.template_id } : {}),
    type: row.architecture_type as Architecture,
    status: row.status as ProjectStatus,
    ...(row.status_reason ? { statusReason: row.status_reason } : {}),
    health: row.health_status as ProjectHealth,
    ...(row.container_id ? { containerId: row.container_id } : {}),
    ...(row.service_url ? { serviceUrl: row.service_url } : {}),
    ...(row.allocated_port !== null ? { allocatedPort: row.allocated_port } : {}),
    memoryLimitMb: row.memory_limit_mb,
    cpuLimitPercent: row.cpu_limit_percent,
    storageLimitMb: row.storage_limit_mb,
    config: { ...stack, ...(row.functionality ? { functionality: row.functionality } : {}) },
  };
}
