import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, registerAndLogin, type TestApp } from '../../../test/app.ts';
import type { ActivityService } from './index.ts';

let t: TestApp;
let activity: ActivityService;
let userId: string;

beforeAll(async () => {
  t = await createTestApp();
  activity = t.services.activity;
  userId = (await registerAndLogin(t.app)).user.id;
});

afterAll(async () => {
  await t?.close();
});

let count = 0;
async function newProject(): Promise<string> {
  return (await t.services.projects.create(userId, { name: `Activity ${++count}` })).id;
}

describe('ActivityService', () => {
  it('records entries and lists them newest first, after the trigger-written project_created', async () => {
    const projectId = await newProject();
    await activity.record({
      projectId,
      userId,
      type: 'container_started',
      description: 'Started the container',
      sourceType: 'system',
      metadata: { port: 3000 },
    });
    await activity.record({
      projectId,
      type: 'webhook_received',
      description: 'Push',
      sourceType: 'webhook',
    });

    const { activity: entries, nextCursor } = await activity.list(projectId);
    expect(nextCursor).toBeUndefined();
    expect(entries.map((e) => e.type)).toEqual([
      'webhook_received',
      'container_started',
      'project_created',
    ]);
    expect(entries[0]).not.toHaveProperty('userId');
    expect(entries[0]!.metadata).toEqual({});
    expect(entries[1]).toMatchObject({ userId, sourceType: 'system', metadata: { port: 3000 } });
    expect(entries[2]).toMatchObject({ userId, sourceType: 'user' });
    for (const e of entries) expect(new Date(e.createdAt).toISOString()).toBe(e.createdAt);
  });

  it('pages through rows that share a timestamp without gaps or repeats', async () => {
    const projectId = await newProject();
    // One transaction: every row gets the same now(), so only the id orders them.
    await t.services.db.transaction().execute(async (tx) => {
      for (let i = 0; i < 7; i++) {
        await activity.record(
          { projectId, type: 'tick', description: `tick ${i}`, sourceType: 'system' },
          tx,
        );
      }
    });
    const all = (await activity.list(projectId, { limit: 200 })).activity.map((e) => e.id);
    expect(all).toHaveLength(8);

    const seen: string[] = [];
    let before: string | undefined;
    do {
      const page = await activity.list(projectId, { limit: 3, before });
      expect(page.activity.length).toBeLessThanOrEqual(3);
      seen.push(...page.activity.map((e) => e.id));
      before = page.nextCursor;
    } while (before);
    expect(seen).toEqual(all);
  });

  it('keeps projects apart and clamps the limit', async () => {
    const a = await newProject();
    const b = await newProject();
    await activity.record({
      projectId: a,
      type: 'only_a',
      description: 'a',
      sourceType: 'user',
      userId,
    });
    expect((await activity.list(b)).activity.map((e) => e.type)).toEqual(['project_created']);
    const clamped = await activity.list(a, { limit: 0 });
    expect(clamped.activity).toHaveLength(1);
    expect(clamped.nextCursor).toBeDefined();
  });

  it('rejects cursors it did not hand out, naming the field', async () => {
    const projectId = await newProject();
    for (const before of ['garbage', Buffer.from('2024-01-01|x').toString('base64url'), '']) {
      await expect(activity.list(projectId, { before })).rejects.toMatchObject({
        code: 'invalid_request',
        details: [{ field: 'before' }],
      });
    }
  });

  it('refuses an unknown source type', async () => {
    const projectId = await newProject();
    await expect(
      activity.record({ projectId, type: 'x', description: 'x', sourceType: 'robot' as never }),
    ).rejects.toThrow(/unknown activity source/);
  });
});
