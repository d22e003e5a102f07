import { writeFileSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { installProvider } from '../../../../../infra/terraform/provider-local/src/install.ts';
import { errors } from '../../common/errors.ts';
import type { Logger } from '../../common/logger.ts';
import type { Db } from '../../db/index.ts';
import { dockerAnswers, dockerClient, type DockerTls } from '../containers/index.ts';
import type { Metrics } from '../monitoring/index.ts';
import type { AuthService } from '../auth/index.ts';
import type { ProjectsService, Role } from '../projects/index.ts';
import type { EventBus } from '../../common/bus.ts';
import { publishProjectEvent } from '../../common/project-events.ts';
import {
  ACTIVE_STATUSES,
  InfrastructureStore,
  type DeploymentRow,
  type EventRow,
  type InfraProvider,
  type InfraStatus,
  type RunKind,
  type RunRow,
} from './store.ts';
import {
  cloudEnvironment,
  credentialsHint,
  credentialsState,
  type CloudProvider,
  type CloudSecrets,
  type CredentialsState,
} from './credentials.ts';
import { killProcessesIn, removeUnrecorded, stateMachines } from './recovery.ts';
import { runTerraform, type TerraformEvent, type TerraformProcess } from './terraform.ts';

/** Where the Terraform modules (`targets/<provider>`) and our provider live. */
export const TERRAFORM_DIR = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '../../../../../infra/terraform',
);

/** A machine as the API shows it. */
export interface Machine {
  name: string;
  id: string;
  address: string;
  publicAddress?: string;
  agent: 'pending' | 'online' | 'offline';
  /** The project's app on this machine, from the last deploy that reached it (else null). */
  app: MachineApp | null;
}

/** The deployed app on one machine. */
export interface MachineApp {
  /** `running`: the deploy (or, `rolledBack`, the previous release) answered its health check. */
  status: 'running' | 'failed';
  /** Where it answers (when it does). */
  url: string | null;
  release: string;
  deployedAt: string;
  rolledBack?: boolean;
}

/** A deployment as the API shows it. */
export interface Deployment {
  id: string;
  projectId: string;
  provider: InfraProvider;
  status: InfraStatus;
  variables: Record<string, unknown>;
  machines: Machine[];
  outputs: Record<string, unknown>;
  drift: { drift: boolean; changes: DriftChange[]; checkedAt: string } | null;
  lastRun: {
    id: string;
    kind: RunKind;
    status: InfraStatus;
    startedAt: string;
    finishedAt: string | null;
    summary: unknown;
    error: string | null;
  } | null;
  createdAt: string;
}

/** One run of a deployment as its history shows it. */
export interface Run {
  id: string;
  kind: RunKind;
  status: InfraStatus;
  /** Who started it (null once their account is gone, or for a run nobody started). */
  startedBy: { id: string; name: string } | null;
  startedAt: string;
  finishedAt: string | null;
  /** From start to finish (null while it runs). */
  durationMs: number | null;
  /** Terraform's plan (`change_summary`, operation `plan`); null for refresh or before a plan. */
  planSummary: { add: number; change: number; destroy: number } | null;
  /** Exit code of `terraform apply` (refresh: of its plan); null when it did not get there. */
  exitCode: number | null;
  error: string | null;
}

/** One resource that changed outside Terraform. */
export interface DriftChange {
  address: string;
  action: string;
}

/** What a provision or re-apply asks for. */
export interface DeploymentVariables {
  machines?: number;
  size?: string;
  region?: string;
  variables?: Record<string, string | number | boolean>;
}

/** A stored or live progress event, with its per-deployment offset. */
export interface InfraEvent {
  seq: number;
  runId: string;
  event: TerraformEvent;
}

export interface InfrastructureServiceDeps {
  db: Db;
  projects: ProjectsService;
  /** Names of the people who started runs (the auth service). */
  users: Pick<AuthService, 'usersByIds'>;
  bus: EventBus;
  log: Logger;
  dataDir: string;
  /** The database Terraform's `pg` backend keeps state in (given only as PG_CONN_STR). */
  databaseUrl: string;
  dockerHost?: string;
  /** DOCKER_TLS_VERIFY: the engine of local machines is reached over TLS. */
  dockerTls?: DockerTls;
  terraformBin?: string;
  /** Between SIGINT and SIGKILL of a canceled run. */
  cancelGraceMs?: number;
  /** Runs finished and their duration (`vaporform_terraform_runs_total`). */
  metrics?: Metrics;
  /** The project's cloud integrations (`aws`, `gcp`, `azure`): the clouds' credentials. */
  secrets?: CloudSecrets;
}

/** A target a project can provision, as the provision form lists it. */
export interface Target {
  target: InfraProvider;
  /** Whether the project's integration holds the cloud's credentials. */
  credentials: CredentialsState;
  /** Whether this server has the target's Terraform provider (clouds: in the plugin folder). */
  available: boolean;
}

const TARGETS: InfraProvider[] = ['local', 'aws', 'gcp', 'azure'];

const CLOUD_PROVIDER_SOURCE: Record<Exclude<InfraProvider, 'local'>, string> = {
  aws: 'hashicorp/aws',
  gcp: 'hashicorp/google',
  azure: 'hashicorp/azurerm',
};
const SIZES = ['small', 'medium', 'large'];
const LOCK_CLASS = 74_610_014;

interface ActiveRun {
  runId: string;
  process: TerraformProcess | undefined;
  canceled: boolean;
}

function eventsChannel(deploymentId: string): string {
  return `infra:${deploymentId}`;
}

/** The pg backend's schema of a deployment. */
export function stateSchema(deploymentId: string): string {
  return `tfstate_${deploymentId.replace(/-/g, '')}`;
}

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

class RunFailure extends Error {}

/** What the agent service adds to deployments (set with `useAgent`). */
export interface AgentHooks {
  /**
   * Extra Terraform environment for a run (enrollment tokens per machine slot, where agents
   * dial): only ever in the environment, never in a file of the work folder.
   */
  environment(deployment: {
    id: string;
    provider: InfraProvider;
    kind: RunKind;
    machineCount: number;
  }): Promise<Record<string, string>>;
  /** Each enrolled machine's agent state (machines not in it are `pending`). */
  status(deploymentId: string): Promise<Map<string, 'pending' | 'online' | 'offline'>>;
  /** The app each machine serves (machines not in it have none). */
  apps?(deploymentId: string): Promise<Map<string, MachineApp>>;
}

/**
 * Deployments of machines through the terraform CLI: one work folder and TF_DATA_DIR per
 * deployment, state in PostgreSQL (pg backend, a schema per deployment), one run at a time per
 * deployment (a PostgreSQL advisory lock held by the run, beside Terraform's own), every `-json`
 * event stored with an offset and published.
 */
export class InfrastructureService {
  readonly #store: InfrastructureStore;
  readonly #deps: InfrastructureServiceDeps;
  readonly #runs = new Map<string, ActiveRun>();
  readonly #finished = new Set<Promise<void>>();
  #plugins: Promise<string> | undefined;
  #agent: AgentHooks | undefined;

  constructor(deps: InfrastructureServiceDeps) {
    this.#deps = deps;
    this.#store = new InfrastructureStore(deps.db);
  }

  /**
   * Recovers the runs a stopped server left active (a run whose advisory lock is still held
   * belongs to another live instance and is left alone): what the run left running in the work
   * folder is killed, containers labelled with the deployment that Terraform's saved state does
   * not hold are removed (with the network once none is left), the machines the state holds are
   * re-adopted as the deployment's machines, and the run and the deployment are marked failed.
   */
  async start(): Promise<void> {
    for (const run of await this.#store.activeRuns()) {
      if (this.#runs.has(run.deployment_id)) continue;
      let lock: pg.Client;
      try {
        lock = await this.#lock(run.deployment_id);
      } catch {
        continue;
      }
      try {
        const row = await this.#store.findDeployment(run.deployment_id);
        const recovered = row ? await this.#recover(row) : { removed: [] };
        const error =
          'The server stopped during this run' +
          (recovered.removed.length > 0
            ? `; ${recovered.removed.length} machine(s) not in Terraform's state were removed (${recovered.removed.join(', ')})`
            : '');
        await this.#store.updateRun(run.id, { status: 'failed', finished: true, error });
        await this.#store.updateDeployment(run.deployment_id, {
          status: 'failed',
          ...(recovered.machines ? { machines: recovered.machines } : {}),
        });
        if (row) {
          await publishProjectEvent(this.#deps.bus, row.project_id, 'infrastructure_status', {
            deploymentId: row.id,
            runId: run.id,
            status: 'failed',
            error,
          });
        }
      } finally {
        await lock.end().catch(() => undefined);
      }
    }
  }

  /** Reconciles a deployment whose run died with its server (see `start`). */
  async #recover(row: DeploymentRow): Promise<{ removed: string[]; machines?: Machine[] }> {
    const killed = await killProcessesIn(path.join(this.#deps.dataDir, 'infrastructure', row.id));
    if (killed > 0) {
      this.#deps.log.warn({ deploymentId: row.id, killed }, "killed a stopped run's terraform");
    }
    if (row.provider !== 'local') return { removed: [] };
    const docker = dockerClient(this.#deps.dockerHost, this.#deps.dockerTls);
    if (!(await dockerAnswers(docker))) {
      this.#deps.log.warn(
        { deploymentId: row.id },
        'no Docker engine answers: machines of a stopped run are reconciled by the next run',
      );
      return { removed: [] };
    }
    const recorded = stateMachines(await this.#store.savedState(stateSchema(row.id)));
    const removed = await removeUnrecorded(docker, row.id, new Set(recorded.map((m) => m.id)));
    return { removed, machines: machinesOf({ machines: recorded }) };
  }

  /** Plugs in the machine agent: enrollment per provisioning run, agent state per machine. */
  useAgent(hooks: AgentHooks): void {
    this.#agent = hooks;
  }

  /** A deployment's project, status and machines, without an access check (internal callers). */
  async internalDeployment(
    deploymentId: string,
  ): Promise<{ projectId: string; status: InfraStatus; machines: Machine[] } | undefined> {
    const row = uuidPattern.test(deploymentId)
      ? await this.#store.findDeployment(deploymentId)
      : undefined;
    if (!row) return undefined;
    return {
      projectId: row.project_id,
      status: row.status,
      machines: (row.machines as Machine[]) ?? [],
    };
  }

  /** Cancels the runs of this instance and waits for them to end. */
  async close(): Promise<void> {
    for (const run of this.#runs.values()) {
      run.canceled = true;
      run.process?.cancel(this.#deps.cancelGraceMs ?? 10_000);
    }
    await Promise.allSettled([...this.#finished]);
  }

  async #access(deploymentId: string, userId: string, min: Role): Promise<DeploymentRow> {
    const row = uuidPattern.test(deploymentId)
      ? await this.#store.findDeployment(deploymentId)
      : undefined;
    if (!row) throw errors.notFound('deployment');
    try {
      await this.#deps.projects.requireRole(row.project_id, userId, min);
    } catch (error) {
      if ((error as { code?: string }).code === 'not_found') throw errors.notFound('deployment');
      throw error;
    }
    return row;
  }

  /**
   * Creates a deployment and starts its first apply.
   * @throws AppError unavailable for cloud targets (their providers cannot be installed here).
   */
  async provision(
    userId: string,
    input: DeploymentVariables & { projectId: string; provider: InfraProvider },
  ): Promise<Deployment> {
    await this.#deps.projects.requireRole(input.projectId, userId, 'admin');
    const variables = this.#variables({}, input);
    if (input.provider !== 'local') {
      await this.#cloudPreflight(input.projectId, input.provider);
    } else if (!(await dockerAnswers(dockerClient(this.#deps.dockerHost, this.#deps.dockerTls)))) {
      throw errors.unavailable(
        `Local machines need a Docker engine and none answers at ${this.#deps.dockerHost ?? 'the default socket'} (set DOCKER_HOST). Nothing was created.`,
      );
    }
    const row = await this.#store.createDeployment({
      projectId: input.projectId,
      provider: input.provider,
      variables,
      createdBy: userId,
    });
    await this.#begin(row, 'apply', userId);
    return this.#view((await this.#store.findDeployment(row.id))!);
  }

  /** The targets a project can provision, with whether their credentials are configured (admin). */
  async targets(userId: string, projectId: string): Promise<Target[]> {
    await this.#deps.projects.requireRole(projectId, userId, 'admin');
    const plugins = await this.#pluginDir();
    return Promise.all(
      TARGETS.map(async (target) => ({
        target,
        credentials: await credentialsState(this.#deps.secrets, projectId, target),
        available:
          target === 'local' ||
          (await readdir(path.join(plugins, 'registry.terraform.io', CLOUD_PROVIDER_SOURCE[target]))
            .then((versions) => versions.length > 0)
            .catch(() => false)),
      })),
    );
  }

  /**
   * Checks, before anything is created, that a cloud target can run here: `terraform init`
   * of its module against the plugin folder only (no registry, no backend: seconds, offline),
   * with the project's credentials in its environment as a real run has them.
   * @throws AppError unavailable when the provider is not installed; invalid when the
   * project's integration lacks the credentials.
   */
  async #cloudPreflight(projectId: string, provider: CloudProvider): Promise<void> {
    const credentials = await cloudEnvironment(this.#deps.secrets, projectId, provider);
    const plugins = await this.#pluginDir();
    const dir = await mkdtemp(path.join(this.#deps.dataDir, 'infrastructure', 'preflight-'));
    let failure: string | undefined;
    try {
      await this.#copyModule(provider, dir);
      const work = { dir, env: { ...this.#baseEnvironment(dir), ...credentials } };
      const active: ActiveRun = { runId: '', process: undefined, canceled: false };
      const timer = setTimeout(() => active.process?.cancel(1000), 30_000);
      try {
        await this.#terraform(
          active,
          work,
          ['init', '-input=false', '-backend=false', `-plugin-dir=${plugins}`],
          () => undefined,
          'init',
        );
      } catch (error) {
        failure = error instanceof Error ? error.message : String(error);
      } finally {
        clearTimeout(timer);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    if (failure !== undefined) {
      throw errors.unavailable(
        `The ${provider} target needs the ${CLOUD_PROVIDER_SOURCE[provider]} ` +
          'Terraform provider, which is not installed on this server and cannot be downloaded ' +
          '(no provider registry is reachable from here). Nothing was created. ' +
          `Credentials: ${credentials ? 'configured' : `missing (add ${credentialsHint(provider)})`}. ` +
          redact(failure, credentials),
      );
    }
    if (!credentials) {
      throw errors.invalid(
        `The ${provider} target needs ${credentialsHint(provider)}. Nothing was created.`,
      );
    }
  }

  /** Re-applies with new variables (only what changed changes). */
  async apply(
    userId: string,
    deploymentId: string,
    input: DeploymentVariables,
  ): Promise<Deployment> {
    const row = await this.#access(deploymentId, userId, 'admin');
    if (row.status === 'destroyed') throw errors.conflict('This deployment was destroyed');
    const variables = this.#variables(row.variables as Record<string, unknown>, input);
    await this.#begin(row, 'apply', userId, variables);
    return this.#view((await this.#store.findDeployment(row.id))!);
  }

  /** Destroys the machines, then the state. */
  async destroy(userId: string, deploymentId: string): Promise<Deployment> {
    const row = await this.#access(deploymentId, userId, 'admin');
    if (row.status === 'destroyed') throw errors.conflict('This deployment is already destroyed');
    await this.#begin(row, 'destroy', userId);
    return this.#view((await this.#store.findDeployment(row.id))!);
  }

  /** Cancels the run in progress. @throws AppError conflict when none runs here. */
  async cancel(userId: string, deploymentId: string): Promise<void> {
    await this.#access(deploymentId, userId, 'admin');
    const run = this.#runs.get(deploymentId);
    if (!run) throw errors.conflict('No run in progress on this deployment');
    run.canceled = true;
    run.process?.cancel(this.#deps.cancelGraceMs ?? 10_000);
  }

  /** `plan -refresh-only -detailed-exitcode`: what changed outside Terraform. */
  async refresh(
    userId: string,
    deploymentId: string,
  ): Promise<{ drift: boolean; changes: DriftChange[] }> {
    const row = await this.#access(deploymentId, userId, 'admin');
    if (row.status === 'destroyed') throw errors.conflict('This deployment was destroyed');
    const lock = await this.#lock(row.id);
    const run = await this.#store.createRun(row.id, 'refresh', userId);
    const active: ActiveRun = { runId: run.id, process: undefined, canceled: false };
    this.#runs.set(row.id, active);
    const changes: DriftChange[] = [];
    try {
      const seq = { next: (await this.#store.lastSeq(row.id)) + 1 };
      const emit = this.#emitter(row, run.id, seq, (event) => {
        if (event.type === 'resource_drift') {
          const change = event.change as { resource?: { addr?: string }; action?: string };
          changes.push({ address: change.resource?.addr ?? '', action: change.action ?? '' });
        }
      });
      await this.#updateRun(row, run.id, 'planning');
      const work = await this.#prepare(row, row.variables as Record<string, unknown>, 'refresh');
      await this.#terraform(
        active,
        work,
        ['init', '-input=false', `-plugin-dir=${work.plugins}`],
        emit,
        'init',
      );
      const result = await this.#terraform(
        active,
        work,
        [
          'plan',
          '-refresh-only',
          '-detailed-exitcode',
          '-input=false',
          '-json',
          '-lock-timeout=0s',
        ],
        emit,
        'refresh',
        [0, 2],
      );
      // Terraform 1.11 exits 2 from a refresh-only plan even when nothing drifted (the
      // outputs are re-written): drift is what its resource_drift events report.
      const drift = result === 2 && changes.length > 0;
      const report = { drift, changes, checkedAt: new Date().toISOString() };
      await emit.flush();
      await this.#store.updateDeployment(row.id, { drift: report });
      await this.#store.updateRun(run.id, {
        status: row.status === 'ready' ? 'ready' : row.status,
        finished: true,
        exit_code: result,
        summary: { drift, changes: changes.length },
      });
      return { drift, changes };
    } catch (error) {
      await this.#store.updateRun(run.id, {
        status: 'failed',
        finished: true,
        error: error instanceof Error ? error.message : String(error),
      });
      throw errors.unavailable(
        `Terraform could not refresh: ${error instanceof Error ? error.message : String(error)}`,
      );
    } finally {
      // The check said `planning` while it ran; the deployment is again what it was.
      await this.#store.updateDeployment(row.id, { status: row.status }).catch(() => undefined);
      await publishProjectEvent(this.#deps.bus, row.project_id, 'infrastructure_status', {
        deploymentId: row.id,
        runId: run.id,
        status: row.status,
      }).catch(() => undefined);
      this.#runs.delete(row.id);
      await lock.end().catch(() => undefined);
    }
  }

  /** Deployments of a project (viewer). */
  async list(userId: string, projectId: string): Promise<Deployment[]> {
    await this.#deps.projects.requireRole(projectId, userId, 'viewer');
    const rows = await this.#store.listDeployments(projectId);
    return Promise.all(rows.map((row) => this.#view(row)));
  }

  /** One deployment (viewer). */
  async get(userId: string, deploymentId: string): Promise<Deployment> {
    return this.#view(await this.#access(deploymentId, userId, 'viewer'));
  }

  /** A deployment's runs, newest first (viewer). */
  async runs(userId: string, deploymentId: string, limit = 50): Promise<Run[]> {
    const row = await this.#access(deploymentId, userId, 'viewer');
    const rows = await this.#store.runs(row.id, limit);
    const ids = [...new Set(rows.flatMap((r) => (r.created_by ? [r.created_by] : [])))];
    const names = new Map((await this.#deps.users.usersByIds(ids)).map((u) => [u.id, u.name]));
    return rows.map((r) => {
      const name = r.created_by ? names.get(r.created_by) : undefined;
      return {
        id: r.id,
        kind: r.kind,
        status: r.status,
        startedBy: r.created_by && name !== undefined ? { id: r.created_by, name } : null,
        startedAt: r.started_at.toISOString(),
        finishedAt: r.finished_at?.toISOString() ?? null,
        durationMs: r.finished_at ? r.finished_at.getTime() - r.started_at.getTime() : null,
        planSummary: planSummaryOf(r.summary),
        exitCode: r.exit_code,
        error: r.error,
      };
    });
  }

  /** Checks access to the log stream (viewer); returns the deployment's id. */
  async requireLogs(userId: string, deploymentId: string): Promise<string> {
    return (await this.#access(deploymentId, userId, 'viewer')).id;
  }

  /** Whether a run is in progress on this instance. */
  running(deploymentId: string): boolean {
    return this.#runs.has(deploymentId);
  }

  /** Stored events after `afterSeq`. */
  async events(deploymentId: string, afterSeq: number): Promise<InfraEvent[]> {
    const rows: EventRow[] = await this.#store.events(deploymentId, afterSeq);
    return rows.map((r) => ({ seq: r.seq, runId: r.run_id, event: r.event as TerraformEvent }));
  }

  /** Live events (and `{end: true}` when a run ends). @returns unsubscribe. */
  subscribe(
    deploymentId: string,
    handler: (message: InfraEvent | { end: true }) => void,
  ): Promise<() => Promise<void>> {
    return this.#deps.bus.subscribe(eventsChannel(deploymentId), (message) =>
      handler(message as InfraEvent | { end: true }),
    );
  }

  #variables(
    previous: Record<string, unknown>,
    input: DeploymentVariables,
  ): Record<string, unknown> {
    const next: Record<string, unknown> = { ...previous, ...(input.variables ?? {}) };
    if (input.machines !== undefined) next.machine_count = input.machines;
    if (input.size !== undefined) {
      if (!SIZES.includes(input.size)) {
        throw errors.invalid(`size must be one of ${SIZES.join(', ')}`);
      }
      next.size = input.size;
    }
    if (input.region !== undefined) next.region = input.region;
    next.machine_count ??= 1;
    for (const key of Object.keys(next)) {
      // The agent's variables come from the agent service only (environment).
      if (
        !/^[a-z][a-z0-9_]{0,63}$/.test(key) ||
        key === 'deployment_id' ||
        key === 'bootstrap' ||
        key.startsWith('agent_')
      ) {
        throw errors.invalid(`Unknown variable ${JSON.stringify(key)}`);
      }
    }
    return next;
  }

  async #lock(deploymentId: string): Promise<pg.Client> {
    if (this.#runs.has(deploymentId)) {
      throw errors.conflict('Another run holds this deployment; wait for it or cancel it');
    }
    const client = new pg.Client({ connectionString: this.#deps.databaseUrl });
    client.on('error', () => undefined);
    await client.connect();
    const r = await client.query<{ locked: boolean }>(
      'SELECT pg_try_advisory_lock($1, hashtext($2)) AS locked',
      [LOCK_CLASS, deploymentId],
    );
    if (!r.rows[0]?.locked) {
      await client.end().catch(() => undefined);
      throw errors.conflict('Another run holds this deployment; wait for it or cancel it');
    }
    return client;
  }

  /** Takes the deployment (409 if busy), records the run and starts it in the background. */
  async #begin(
    row: DeploymentRow,
    kind: 'apply' | 'destroy',
    userId: string,
    variables?: Record<string, unknown>,
  ): Promise<void> {
    const lock = await this.#lock(row.id);
    let run: RunRow;
    try {
      if (variables) await this.#store.updateDeployment(row.id, { variables });
      run = await this.#store.createRun(row.id, kind, userId);
      await this.#store.updateDeployment(row.id, {
        status: kind === 'destroy' ? 'destroying' : 'queued',
      });
    } catch (error) {
      await lock.end().catch(() => undefined);
      throw error;
    }
    const active: ActiveRun = { runId: run.id, process: undefined, canceled: false };
    this.#runs.set(row.id, active);
    const deployment = { ...row, variables: variables ?? row.variables };
    const done = this.#execute(deployment, run, kind, active)
      .catch((error: unknown) => this.#deps.log.error({ err: error }, 'infrastructure run crashed'))
      .finally(async () => {
        this.#runs.delete(row.id);
        await lock.end().catch(() => undefined);
        await this.#deps.bus.publish(eventsChannel(row.id), { end: true });
        this.#finished.delete(done);
      });
    this.#finished.add(done);
  }

  async #updateRun(row: DeploymentRow, runId: string, status: InfraStatus): Promise<void> {
    await this.#store.updateRun(runId, { status });
    await this.#store.updateDeployment(row.id, { status });
    await publishProjectEvent(this.#deps.bus, row.project_id, 'infrastructure_status', {
      deploymentId: row.id,
      runId,
      status,
    });
  }

  async #execute(
    row: DeploymentRow,
    run: RunRow,
    kind: 'apply' | 'destroy',
    active: ActiveRun,
  ): Promise<void> {
    const seq = { next: (await this.#store.lastSeq(row.id)) + 1 };
    const summary: Record<string, unknown> = {};
    const emit = this.#emitter(row, run.id, seq, (event) => {
      if (event.type === 'change_summary') {
        const changes = event.changes as { operation?: string };
        summary[changes.operation === 'plan' ? 'plan' : 'apply'] = changes;
      }
    });
    const started = Date.now();
    let exitCode: number | null = null;
    try {
      await this.#updateRun(row, run.id, kind === 'destroy' ? 'destroying' : 'planning');
      const work = await this.#prepare(row, row.variables as Record<string, unknown>, kind);
      await this.#terraform(
        active,
        work,
        ['init', '-input=false', `-plugin-dir=${work.plugins}`],
        emit,
        'init',
      );
      const planArgs = ['plan', '-input=false', '-json', '-out=tfplan', '-lock-timeout=0s'];
      if (kind === 'destroy') planArgs.push('-destroy');
      await this.#terraform(active, work, planArgs, emit, 'plan');
      if (kind === 'apply') await this.#updateRun(row, run.id, 'applying');
      exitCode = await this.#terraform(
        active,
        work,
        ['apply', '-input=false', '-json', 'tfplan'],
        emit,
        'apply',
      );
      if (kind === 'apply') {
        const outputs = await this.#outputs(active, work);
        const machines = machinesOf(outputs);
        await this.#store.updateDeployment(row.id, { outputs, machines, drift: null });
        await this.#finish(row, run.id, 'ready', exitCode, summary, started, null);
      } else {
        await this.#store.dropStateSchema(stateSchema(row.id));
        await rm(work.dir, { recursive: true, force: true });
        await this.#store.updateDeployment(row.id, { outputs: {}, machines: [], drift: null });
        await this.#finish(row, run.id, 'destroyed', exitCode, summary, started, null);
      }
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      const status: InfraStatus = active.canceled ? 'canceled' : 'failed';
      await this.#finish(
        row,
        run.id,
        status,
        exitCode,
        summary,
        started,
        active.canceled ? 'Canceled' : message,
      );
    } finally {
      await emit.flush();
    }
  }

  async #finish(
    row: DeploymentRow,
    runId: string,
    status: InfraStatus,
    exitCode: number | null,
    summary: Record<string, unknown>,
    started: number,
    error: string | null,
  ): Promise<void> {
    await this.#store.updateRun(runId, {
      status,
      finished: true,
      exit_code: exitCode,
      summary: { ...summary, durationMs: Date.now() - started },
      error,
    });
    await this.#store.updateDeployment(row.id, { status });
    this.#deps.metrics?.terraformRuns.labels(status).inc();
    this.#deps.metrics?.terraformRunDuration.labels(status).observe((Date.now() - started) / 1000);
    await publishProjectEvent(this.#deps.bus, row.project_id, 'infrastructure_status', {
      deploymentId: row.id,
      runId,
      status,
      error,
    });
  }

  /** Stores each event with the next offset, in order, and publishes it. */
  #emitter(
    row: DeploymentRow,
    runId: string,
    seq: { next: number },
    observe: (event: TerraformEvent) => void,
  ): ((event: TerraformEvent) => void) & { flush(): Promise<void> } {
    let chain = Promise.resolve();
    const emit = (event: TerraformEvent) => {
      observe(event);
      const n = seq.next++;
      chain = chain.then(async () => {
        try {
          await this.#store.insertEvent(row.id, runId, n, event);
          const message: InfraEvent = { seq: n, runId, event };
          await this.#deps.bus.publish(eventsChannel(row.id), message);
          await publishProjectEvent(this.#deps.bus, row.project_id, 'infrastructure_event', {
            deploymentId: row.id,
            ...message,
          });
        } catch (error) {
          this.#deps.log.warn({ err: error, deploymentId: row.id }, 'infrastructure event lost');
        }
      });
    };
    return Object.assign(emit, { flush: () => chain });
  }

  async #pluginDir(): Promise<string> {
    this.#plugins ??= (async () => {
      const dir = path.join(this.#deps.dataDir, 'infrastructure', 'plugins');
      await installProvider(dir);
      return dir;
    })();
    return this.#plugins;
  }

  /** The deployment's work folder: the target's module, the backend, the variables. */
  async #prepare(
    row: DeploymentRow,
    variables: Record<string, unknown>,
    kind: RunKind,
  ): Promise<{
    dir: string;
    env: Record<string, string>;
    plugins: string;
    secrets?: Record<string, string>;
  }> {
    const plugins = await this.#pluginDir();
    const dir = path.join(this.#deps.dataDir, 'infrastructure', row.id);
    await mkdir(dir, { recursive: true });
    await this.#copyModule(row.provider, dir);
    await writeFile(
      path.join(dir, 'backend.tf'),
      `terraform {\n  backend "pg" {\n    schema_name = "${stateSchema(row.id)}"\n  }\n}\n`,
    );
    await writeFile(
      path.join(dir, 'terraform.tfvars.json'),
      JSON.stringify({ ...variables, deployment_id: row.id }, null, 2),
    );
    const env: Record<string, string> = {
      ...this.#baseEnvironment(dir),
      PG_CONN_STR: terraformConnectionString(this.#deps.databaseUrl),
    };
    if (this.#deps.dockerHost) env.DOCKER_HOST = this.#deps.dockerHost;
    // The local provider's dockerode reads Docker's own variables.
    if (this.#deps.dockerTls) {
      env.DOCKER_TLS_VERIFY = '1';
      env.DOCKER_CERT_PATH = this.#deps.dockerTls.certPath;
    }
    let secrets: Record<string, string> | undefined;
    if (row.provider !== 'local') {
      // The cloud's credentials: only ever in Terraform's environment, redacted from its output.
      secrets = await cloudEnvironment(this.#deps.secrets, row.project_id, row.provider);
      if (!secrets)
        throw new RunFailure(`Missing credentials: add ${credentialsHint(row.provider)}`);
      Object.assign(env, secrets);
    }
    if (this.#agent) {
      Object.assign(
        env,
        await this.#agent.environment({
          id: row.id,
          provider: row.provider,
          kind,
          machineCount: Number(variables.machine_count ?? 1),
        }),
      );
    }
    return { dir, env, plugins, secrets };
  }

  /** Copies the target's module (`infra/terraform/targets/<provider>`) into `dir`. */
  async #copyModule(provider: InfraProvider, dir: string): Promise<void> {
    const target = path.join(TERRAFORM_DIR, 'targets', provider);
    for (const file of await readdir(target)) {
      if (file.endsWith('.tf')) await copyFile(path.join(target, file), path.join(dir, file));
    }
  }

  /** The environment every Terraform command gets in work folder `dir` (nothing inherited). */
  #baseEnvironment(dir: string): Record<string, string> {
    const cliConfig = path.join(dir, 'cli.tfrc');
    writeFileSync(cliConfig, '');
    return {
      PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
      HOME: dir,
      TF_DATA_DIR: path.join(dir, '.terraform'),
      TF_IN_AUTOMATION: '1',
      TF_INPUT: '0',
      TF_CLI_CONFIG_FILE: cliConfig,
      CHECKPOINT_DISABLE: '1',
    };
  }

  /** Runs one command; @returns its exit code. @throws RunFailure unless it is in `ok`. */
  async #terraform(
    active: ActiveRun,
    work: { dir: string; env: Record<string, string>; secrets?: Record<string, string> },
    args: string[],
    emit: (event: TerraformEvent) => void,
    stage: string,
    ok: number[] = [0],
  ): Promise<number> {
    if (active.canceled) throw new RunFailure('Canceled');
    emit({ type: 'vaporform_stage', '@level': 'info', '@message': `terraform ${stage}`, stage });
    const process = runTerraform(this.#deps.terraformBin ?? 'terraform', [...args, '-no-color'], {
      cwd: work.dir,
      env: work.env,
      onEvent: work.secrets
        ? (event) => emit(JSON.parse(redact(JSON.stringify(event), work.secrets)) as TerraformEvent)
        : emit,
    });
    active.process = process;
    const result = await process.done;
    active.process = undefined;
    if (result.exitCode !== null && ok.includes(result.exitCode)) return result.exitCode;
    if (active.canceled) throw new RunFailure('Canceled');
    const detail = redact(
      result.stderr.trim().split('\n').slice(-5).join(' ').trim(),
      work.secrets,
    );
    throw new RunFailure(
      `terraform ${stage} failed (exit ${result.exitCode ?? result.signal})${detail ? `: ${detail}` : ''}`,
    );
  }

  async #outputs(
    active: ActiveRun,
    work: { dir: string; env: Record<string, string> },
  ): Promise<Record<string, unknown>> {
    const lines: string[] = [];
    const process = runTerraform(
      this.#deps.terraformBin ?? 'terraform',
      ['output', '-json', '-no-color'],
      {
        cwd: work.dir,
        env: work.env,
        onEvent: () => undefined,
        onLine: (line) => lines.push(line),
      },
    );
    active.process = process;
    const result = await process.done;
    active.process = undefined;
    if (result.exitCode !== 0) throw new RunFailure(`terraform output failed: ${result.stderr}`);
    const parsed = JSON.parse(lines.join('\n')) as Record<string, { value: unknown }>;
    return Object.fromEntries(Object.entries(parsed).map(([k, v]) => [k, v.value]));
  }

  async #view(row: DeploymentRow): Promise<Deployment> {
    const run = await this.#store.lastRun(row.id);
    const agents = await this.#agent?.status(row.id);
    const apps = await this.#agent?.apps?.(row.id);
    return {
      id: row.id,
      projectId: row.project_id,
      provider: row.provider,
      status: row.status,
      variables: row.variables as Record<string, unknown>,
      machines: ((row.machines as Machine[]) ?? []).map((m) => ({
        ...m,
        agent: agents?.get(m.name) ?? 'pending',
        app: apps?.get(m.name) ?? null,
      })),
      outputs: (row.outputs as Record<string, unknown>) ?? {},
      drift: (row.drift as Deployment['drift']) ?? null,
      lastRun: run
        ? {
            id: run.id,
            kind: run.kind,
            status: run.status,
            startedAt: run.started_at.toISOString(),
            finishedAt: run.finished_at?.toISOString() ?? null,
            summary: run.summary,
            error: run.error,
          }
        : null,
      createdAt: row.created_at.toISOString(),
    };
  }
}

/** `text` with every credential value in it replaced (JSON-escaped forms too). */
function redact(text: string, secrets: Record<string, string> | undefined): string {
  let out = text;
  for (const value of Object.values(secrets ?? {})) {
    if (value.length < 4) continue;
    for (const form of new Set([value, JSON.stringify(value).slice(1, -1)])) {
      out = out.split(form).join('[redacted]');
    }
  }
  return out;
}

/** The plan's counts a run stored (`summary.plan`, Terraform's `change_summary`). */
function planSummaryOf(summary: unknown): Run['planSummary'] {
  const plan = (summary as { plan?: { add?: unknown; change?: unknown; remove?: unknown } } | null)
    ?.plan;
  if (!plan) return null;
  const count = (v: unknown) => (typeof v === 'number' ? v : 0);
  return { add: count(plan.add), change: count(plan.change), destroy: count(plan.remove) };
}

/** Whether a deployment status means a run holds it. */
export function isActive(status: InfraStatus): boolean {
  return ACTIVE_STATUSES.includes(status);
}

/**
 * Terraform's pg backend (lib/pq) requires TLS unless told otherwise, where node-postgres does
 * not ask for it: a URL without `sslmode` to this host gets `sslmode=disable`.
 */
export function terraformConnectionString(url: string): string {
  const parsed = new URL(url);
  if (parsed.searchParams.has('sslmode')) return url;
  const local = ['localhost', '127.0.0.1', '[::1]', ''].includes(parsed.hostname);
  if (local) parsed.searchParams.set('sslmode', 'disable');
  return parsed.toString();
}

function machinesOf(outputs: Record<string, unknown>): Machine[] {
  const list = Array.isArray(outputs.machines) ? outputs.machines : [];
  return list.map((m: { name?: string; id?: string; private_ip?: string; public_ip?: string }) => ({
    name: m.name ?? '',
    id: m.id ?? '',
    address: m.private_ip ?? '',
    ...(m.public_ip ? { publicAddress: m.public_ip } : {}),
    agent: 'pending' as const,
    app: null,
  }));
}
