import type { ProjectEventData, Schemas } from '@vaporform/sdk';
import { readSse } from '../lib/sse.ts';
import type { ApiConnection } from '../lib/client.ts';

/** One stored `terraform -json` event of a deployment (`/logs`, `infrastructure_event`). */
export type InfraLogEvent = Omit<ProjectEventData<'infrastructure_event'>, 'deploymentId'>;

type Deployment = Schemas['Deployment'];
type RunStatus = Deployment['status'];
/** What Terraform's `change_summary` counts. */
export interface ChangeSummary {
  add: number;
  change: number;
  remove: number;
  import?: number;
  operation?: string;
}

/** A resource of a run as it moved: planned, being applied, done or failed. */
export interface RunResource {
  addr: string;
  action: string;
  state: 'planned' | 'running' | 'done' | 'error';
  elapsed?: number;
}

/** A Terraform run as its events tell it. */
export interface RunView {
  runId: string;
  kind: 'apply' | 'destroy' | 'refresh';
  /** The run's stage (`init`, `plan`, `apply`, `refresh`) last reached. */
  stage: string | null;
  /** The deployment's lastRun status for the last run; else what the events say. */
  status: RunStatus | 'ended';
  plan: ChangeSummary | null;
  applied: ChangeSummary | null;
  resources: RunResource[];
  errors: string[];
  startedAt: string | null;
  endedAt: string | null;
  /** 0–100. */
  percent: number;
  /** Every event's message, in order (the raw log). */
  lines: string[];
}

const ACTIVE: RunStatus[] = ['queued', 'planning', 'applying', 'destroying'];

/** Whether a status means a Terraform run holds the deployment. */
export function isRunning(status: string): boolean {
  return (ACTIVE as string[]).includes(status);
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

function resourceOf(e: Record<string, unknown>): {
  addr?: string;
  action?: string;
  elapsed?: number;
} {
  const holder = (e.hook ?? e.change) as
    { resource?: { addr?: string }; action?: string; elapsed_seconds?: number } | undefined;
  return {
    addr: holder?.resource?.addr,
    action: holder?.action,
    elapsed: holder?.elapsed_seconds,
  };
}

/**
 * The runs of a deployment, oldest first, from its stored events (grouped by `runId`): stage,
 * plan summary, resources as they appear, errors, the raw log and a progress figure. The last
 * run takes the deployment's `lastRun` status; earlier ones say what their events show.
 */
export function runsOf(events: InfraLogEvent[], deployment: Deployment | null): RunView[] {
  const byRun = new Map<string, InfraLogEvent[]>();
  for (const e of [...events].sort((a, b) => a.seq - b.seq)) {
    const list = byRun.get(e.runId) ?? [];
    list.push(e);
    byRun.set(e.runId, list);
  }
  const last = deployment?.lastRun ?? null;
  const runs = [...byRun.entries()].map(([runId, list]) => viewOf(runId, list));
  // The last run may have started without an event stored yet.
  if (last && !byRun.has(last.id)) runs.push(viewOf(last.id, []));
  for (const run of runs) {
    if (last && run.runId === last.id) {
      run.kind = last.kind;
      run.status = last.status;
      run.startedAt ??= last.startedAt;
      run.endedAt = last.finishedAt;
      if (last.error && !run.errors.includes(last.error)) run.errors.push(last.error);
    }
    run.percent = percentOf(run);
  }
  return runs;
}

function viewOf(runId: string, list: InfraLogEvent[]): RunView {
  const resources = new Map<string, RunResource>();
  const run: RunView = {
    runId,
    kind: 'apply',
    stage: null,
    status: 'ended',
    plan: null,
    applied: null,
    resources: [],
    errors: [],
    startedAt: null,
    endedAt: null,
    percent: 0,
    lines: [],
  };
  for (const { event } of list) {
    const e = event as Record<string, unknown>;
    const at = str(e['@timestamp']);
    if (at) {
      run.startedAt ??= at;
      run.endedAt = at;
    }
    const message = str(e['@message']);
    if (message) run.lines.push(message);
    const { addr, action, elapsed } = resourceOf(e);
    switch (event.type) {
      case 'vaporform_stage':
        run.stage = str(e.stage) ?? run.stage;
        if (run.stage === 'refresh') run.kind = 'refresh';
        break;
      case 'planned_change':
        if (addr) resources.set(addr, { addr, action: action ?? 'change', state: 'planned' });
        break;
      case 'apply_start':
      case 'apply_progress':
        if (addr) {
          const r = resources.get(addr);
          resources.set(addr, {
            addr,
            action: action ?? r?.action ?? 'change',
            state: 'running',
            elapsed,
          });
        }
        break;
      case 'apply_complete':
        if (addr) resources.set(addr, { addr, action: action ?? 'change', state: 'done', elapsed });
        break;
      case 'apply_errored':
        if (addr)
          resources.set(addr, { addr, action: action ?? 'change', state: 'error', elapsed });
        break;
      case 'change_summary': {
        const changes = e.changes as ChangeSummary | undefined;
        if (!changes) break;
        if (changes.operation === 'plan') run.plan = changes;
        else run.applied = changes;
        if (changes.operation === 'destroy') run.kind = 'destroy';
        break;
      }
      case 'diagnostic': {
        const d = e.diagnostic as { severity?: string; summary?: string; detail?: string };
        if (d?.severity === 'error')
          run.errors.push([d.summary, d.detail].filter(Boolean).join(': '));
        break;
      }
    }
  }
  if (run.kind === 'apply' && run.plan && run.plan.add === 0 && run.plan.change === 0) {
    if (run.plan.remove > 0 && [...resources.values()].every((r) => r.action === 'delete'))
      run.kind = 'destroy';
  }
  if (run.errors.length) run.status = 'failed';
  else if (run.applied) run.status = run.kind === 'destroy' ? 'destroyed' : 'ready';
  run.resources = [...resources.values()];
  return run;
}

function percentOf(run: RunView): number {
  if (run.status === 'ready' || run.status === 'destroyed') return 100;
  if (!isRunning(run.status)) return run.stage ? percentOfStages(run) : 0;
  return percentOfStages(run);
}

function percentOfStages(run: RunView): number {
  if (run.stage === 'apply' || run.resources.some((r) => r.state !== 'planned')) {
    const total = run.resources.length || 1;
    const done = run.resources.filter((r) => r.state === 'done').length;
    return Math.round(25 + (70 * done) / total);
  }
  if (run.stage === 'plan' || run.stage === 'refresh') return 15;
  if (run.stage === 'init') return 5;
  return 2;
}

/**
 * Every stored event of a deployment after `after` (`GET …/logs?follow=false`, server-sent
 * events read through the generated client, so with the session's token).
 */
export async function loadRunEvents(
  api: ApiConnection,
  deploymentId: string,
  after = 0,
): Promise<InfraLogEvent[]> {
  const { response } = await api.client.GET('/api/infrastructure/{deploymentId}/logs', {
    params: { path: { deploymentId }, query: { follow: 'false', ...(after ? { after } : {}) } },
    parseAs: 'stream',
  });
  if (!response.ok || !response.body) throw new Error(`The log answered ${response.status}`);
  const out: InfraLogEvent[] = [];
  for await (const message of readSse(response.body)) {
    if (message.event !== 'event') continue;
    try {
      out.push(JSON.parse(message.data) as InfraLogEvent);
    } catch {
      // A malformed line is skipped.
    }
  }
  return out;
}
