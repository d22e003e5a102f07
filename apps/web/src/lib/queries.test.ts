import { QueryClient, QueryObserver } from '@tanstack/react-query';
import { projectEventOf, type ProjectEvent } from '@vaporform/sdk';
import { describe, expect, it, vi } from 'vitest';
import { invalidateForEvent } from './queries.ts';

const projectId = 'p1';
const project = { params: { path: { id: projectId } } };

/** The cache key of a turn's review (openapi-react-query's). */
function changesetKey(changesetId: string) {
  return [
    'get',
    '/api/projects/{id}/changesets/{changesetId}',
    { params: { path: { id: projectId, changesetId } } },
  ];
}

function cacheWith(): QueryClient {
  const qc = new QueryClient({ defaultOptions: { queries: { staleTime: Infinity } } });
  const turn = (id: string, paths: string[]) => ({
    changeset: { id, files: paths.map((path) => ({ path, hunks: [] })) },
  });
  qc.setQueryData(changesetKey('c-app'), turn('c-app', ['app.js', 'lib/util.js']));
  qc.setQueryData(changesetKey('c-css'), turn('c-css', ['style.css']));
  qc.setQueryData(['get', '/api/projects/{id}/checkpoints', project], { checkpoints: [] });
  qc.setQueryData(['get', '/api/projects/{id}/review/pending', project], { files: [] });
  return qc;
}

function stale(qc: QueryClient, key: unknown[]): boolean | undefined {
  return qc.getQueryState(key)?.isInvalidated;
}

describe('cached server state made stale by project-socket events', () => {
  it('reads an open review again when one of its turn’s files changes, not others', () => {
    const qc = cacheWith();
    const event: ProjectEvent = projectEventOf('file_changed', {
      path: 'lib/util.js',
      version: 3,
      source: 'user',
      operation: 'write',
    });
    invalidateForEvent(qc, projectId, event);
    expect(stale(qc, changesetKey('c-app'))).toBe(true);
    expect(stale(qc, changesetKey('c-css'))).toBe(false);
    expect(stale(qc, ['get', '/api/projects/{id}/review/pending', project])).toBe(true);
  });

  it('counts each file of a files_changed (a restore) the same way', () => {
    const qc = cacheWith();
    invalidateForEvent(
      qc,
      projectId,
      projectEventOf('files_changed', {
        source: 'user',
        files: [
          { path: 'README.md', version: 2, operation: 'write' },
          { path: 'style.css', version: 4, operation: 'restore' },
        ],
      }),
    );
    expect(stale(qc, changesetKey('c-css'))).toBe(true);
    expect(stale(qc, changesetKey('c-app'))).toBe(false);
  });

  it('reads every open review again on review_changed (another member decided)', () => {
    const qc = cacheWith();
    invalidateForEvent(
      qc,
      projectId,
      projectEventOf('review_changed', {
        changesetId: 'c-css',
        userId: 'u2',
        state: 'accepted',
        hunks: [{ id: 'h1', path: 'style.css' }],
      }),
    );
    expect(stale(qc, changesetKey('c-css'))).toBe(true);
    expect(stale(qc, ['get', '/api/projects/{id}/review/pending', project])).toBe(true);
    expect(stale(qc, ['get', '/api/projects/{id}/checkpoints', project])).toBe(false);
  });

  it('reads the checkpoint timeline again when a checkpoint is made', () => {
    const qc = cacheWith();
    invalidateForEvent(
      qc,
      projectId,
      projectEventOf('checkpoint_created', {
        checkpointId: 'k1',
        name: 'Before the assistant: tune it',
        kind: 'assistant',
        userId: 'u1',
      }),
    );
    expect(stale(qc, ['get', '/api/projects/{id}/checkpoints', project])).toBe(true);
    expect(stale(qc, changesetKey('c-app'))).toBe(false);
  });

  it('reads the deployments again when an agent connects: a read already on its way cannot leave the machine pending', async () => {
    // What the server would answer: the second machine's agent has not connected yet.
    const agents: Record<string, string> = { 'vf-d-0': 'online', 'vf-d-1': 'pending' };
    // Each read takes what the server holds when it starts and is answered when the test says.
    const answers: (() => void)[] = [];
    const qc = new QueryClient({
      defaultOptions: { queries: { staleTime: Infinity, retry: false } },
    });
    const key = ['get', '/api/infrastructure', { params: { query: { projectId } } }];
    const observer = new QueryObserver(qc, {
      queryKey: key,
      queryFn: () => {
        const machines = Object.entries(agents).map(([name, agent]) => ({ name, agent }));
        return new Promise((resolve) =>
          answers.push(() => resolve({ deployments: [{ id: 'd', machines }] })),
        );
      },
    });
    const shown = () =>
      (
        qc.getQueryData(key) as { deployments: { machines: { agent: string }[] }[] } | undefined
      )?.deployments[0]?.machines.map((m) => m.agent);
    const off = observer.subscribe(() => undefined);
    const answerAll = async () => {
      await new Promise((resolve) => setTimeout(resolve, 0));
      while (answers.length) answers.shift()!();
      await new Promise((resolve) => setTimeout(resolve, 0));
    };
    await answerAll();
    expect(shown()).toEqual(['online', 'pending']);

    // A read leaves (the run turned ready), then the agent connects and its event arrives
    // before that read's answer, which still says pending.
    void observer.refetch();
    agents['vf-d-1'] = 'online';
    invalidateForEvent(
      qc,
      projectId,
      projectEventOf('agent_status', { deploymentId: 'd', machine: 'vf-d-1', agent: 'online' }),
    );
    await answerAll();
    await vi.waitFor(() => expect(shown()).toEqual(['online', 'online']));
    off();
  });
});
