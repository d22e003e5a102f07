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

/** The run in progress (or the last one) as its events tell it. */
export interface RunView {
  runId: string;
  kind: LastRun['kind'];
  /** The run's stage (`init`, `plan`, `apply`, `refresh`) last reached. */
  stage: string | null;
  /** The deployment's `lastRun` status. */
  status: RunStatus;
  plan: ChangeSummary | null;
  applied: ChangeSummary | null;
  resources: RunResource[];
  errors: string[];
  startedAt: string;
  endedAt: string | null;
  /** 0–100. */
  percent: number;
  /** Every event's message, in order (the raw log). */
  lines: string[];
}

type LastRun = NonNullable<Deployment['lastRun']>;

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

/** One run's events, in order (folded by `seq`: duplicates and arrival order do not matter). */
function eventsOfRun(events: InfraLogEvent[], runId: string): InfraLogEvent[] {
  const bySeq = new Map(events.filter((e) => e.runId === runId).map((e) => [e.seq, e]));
  return [...bySeq.values()].sort((a, b) => a.seq - b.seq);
}

/** One run's raw log: each stored event's message, in order. */
export function runLog(events: InfraLogEvent[], runId: string): string[] {
  return eventsOfRun(events, runId).flatMap((e) => {
    const message = str((e.event as Record<string, unknown>)['@message']);
    return message ? [message] : [];
  });
}

/**
 * The deployment's last run as the progress card shows it: kind, status, start, end and error
 * from the server's `lastRun`; stage, plan, resources as they appear, Terraform's error
 * diagnostics, the raw log and a progress figure from its events.
 */
export function currentRun(events: InfraLogEvent[], last: LastRun): RunView {
  const resources = new Map<string, RunResource>();
  const run: RunView = {
    runId: last.id,
    kind: last.kind,
    stage: null,
    status: last.status,
    plan: null,
    applied: null,
    resources: [],
    errors: [],
    startedAt: last.startedAt,
    endedAt: last.finishedAt,
    percent: 0,
    lines: runLog(events, last.id),
  };
  for (const { event } of eventsOfRun(events, last.id)) {
    const e = event as Record<string, unknown>;
    const { addr, action, elapsed } = resourceOf(e);
    switch (event.type) {
      case 'vaporform_stage':
        run.stage = str(e.stage) ?? run.stage;
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
  if (last.error && !run.errors.includes(last.error)) run.errors.push(last.error);
  run.resources = [...resources.values()];
  run.percent = percentOf(run);
  return run;
}

function percentOf(run: RunView): number {
  if (run.status === 'ready' || run.status === 'destroyed') return 100;
  if (!isRunning(run.status) && !run.stage) return 0;
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
