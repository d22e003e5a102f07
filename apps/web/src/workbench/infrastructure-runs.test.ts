import type { Schemas } from '@vaporform/sdk';
import { describe, expect, it } from 'vitest';
import { currentRun, runLog, type InfraLogEvent } from './infrastructure-runs.ts';

type Deployment = Schemas['Deployment'];

const apply = 'a1111111-1111-4111-8111-111111111111';
const destroy = 'b2222222-2222-4222-8222-222222222222';

/** What `terraform -json` and the server's stage markers store, in the order a run makes them. */
function events(
  runId: string,
  seq0: number,
  list: ({ type: string } & Record<string, unknown>)[],
): InfraLogEvent[] {
  return list.map((event, i) => ({
    seq: seq0 + i,
    runId,
    event: { '@timestamp': `2026-12-02T10:00:${String(i).padStart(2, '0')}Z`, ...event },
  }));
}

const machine = (i: number) => ({ addr: `vaporform_machine.machine[${i}]` });

const applyEvents = events(apply, 1, [
  { type: 'vaporform_stage', stage: 'init', '@message': 'terraform init' },
  { type: 'vaporform_stage', stage: 'plan', '@message': 'terraform plan' },
  { type: 'planned_change', change: { resource: machine(0), action: 'create' } },
  { type: 'planned_change', change: { resource: machine(1), action: 'create' } },
  {
    type: 'change_summary',
    '@message': 'Plan: 2 to add, 0 to change, 0 to destroy.',
    changes: { add: 2, change: 0, remove: 0, operation: 'plan' },
  },
  { type: 'vaporform_stage', stage: 'apply', '@message': 'terraform apply' },
  { type: 'apply_start', hook: { resource: machine(0), action: 'create' } },
  { type: 'apply_start', hook: { resource: machine(1), action: 'create' } },
  { type: 'apply_complete', hook: { resource: machine(0), action: 'create', elapsed_seconds: 1 } },
]);

type LastRun = NonNullable<Deployment['lastRun']>;

function lastRun(patch: Partial<LastRun>): LastRun {
  return {
    id: apply,
    kind: 'apply',
    status: 'applying',
    startedAt: '2026-12-02T10:00:00Z',
    finishedAt: null,
    error: null,
    ...patch,
  };
}

describe('the current Terraform run as the infrastructure panel shows it', () => {
  it('mid-apply: the plan, one of two machines created, progress between the stages', () => {
    const run = currentRun(applyEvents, lastRun({}));
    expect(run.status).toBe('applying');
    expect(run.stage).toBe('apply');
    expect(run.plan).toMatchObject({ add: 2, change: 0, remove: 0 });
    expect(run.resources.map((r) => [r.addr, r.state])).toEqual([
      ['vaporform_machine.machine[0]', 'done'],
      ['vaporform_machine.machine[1]', 'running'],
    ]);
    // 25 % once applying, 70 % spread over the resources: one of two done.
    expect(run.percent).toBe(60);
    expect(run.lines).toContain('Plan: 2 to add, 0 to change, 0 to destroy.');
  });

  it('a later destroy: only its own events count, folded by seq whatever their order', () => {
    const done = [
      ...applyEvents,
      ...events(apply, 10, [
        { type: 'apply_complete', hook: { resource: machine(1), action: 'create' } },
        {
          type: 'change_summary',
          '@message': 'Apply complete! Resources: 2 added, 0 changed, 0 destroyed.',
          changes: { add: 2, change: 0, remove: 0, operation: 'apply' },
        },
      ]),
      ...events(destroy, 12, [
        { type: 'vaporform_stage', stage: 'plan', '@message': 'terraform plan -destroy' },
        { type: 'planned_change', change: { resource: machine(0), action: 'delete' } },
        { type: 'planned_change', change: { resource: machine(1), action: 'delete' } },
        { type: 'change_summary', changes: { add: 0, change: 0, remove: 2, operation: 'plan' } },
      ]),
    ];
    // Out of order, with duplicates.
    const shuffled = [...done].reverse().concat(done.slice(0, 3), done.slice(-2));
    const run = currentRun(
      shuffled,
      lastRun({ id: destroy, kind: 'destroy', status: 'destroying' }),
    );
    expect([run.kind, run.status, run.stage]).toEqual(['destroy', 'destroying', 'plan']);
    expect(run.plan).toMatchObject({ remove: 2 });
    expect(run.applied).toBeNull();
    expect(run.resources.map((r) => r.action)).toEqual(['delete', 'delete']);
    expect(run.percent).toBe(15);
    expect(run.lines).toEqual(['terraform plan -destroy']);
    // Each run of the history keeps its own log.
    expect(runLog(shuffled, apply)).toEqual([
      'terraform init',
      'terraform plan',
      'Plan: 2 to add, 0 to change, 0 to destroy.',
      'terraform apply',
      'Apply complete! Resources: 2 added, 0 changed, 0 destroyed.',
    ]);
  });

  it('a failed apply: the error diagnostic and the run’s error are shown', () => {
    const failed = [
      ...applyEvents,
      ...events(apply, 10, [
        { type: 'apply_errored', hook: { resource: machine(1), action: 'create' } },
        {
          type: 'diagnostic',
          diagnostic: { severity: 'error', summary: 'docker: no such image', detail: 'x:1' },
        },
      ]),
    ];
    const run = currentRun(
      failed,
      lastRun({ status: 'failed', finishedAt: '2026-12-02T10:01:00Z', error: 'exit 1' }),
    );
    expect(run.status).toBe('failed');
    expect(run.endedAt).toBe('2026-12-02T10:01:00Z');
    expect(run.errors).toEqual(['docker: no such image: x:1', 'exit 1']);
    expect(run.resources.find((r) => r.addr.endsWith('[1]'))!.state).toBe('error');
  });

  it('a run that started before any event was stored still shows', () => {
    const run = currentRun([], lastRun({ status: 'queued' }));
    expect(run.status).toBe('queued');
    expect(run.percent).toBe(2);
    expect(run.lines).toEqual([]);
  });
});
