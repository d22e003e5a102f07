import { describe, expect, it } from 'vitest';
import { asyncApiDocument, findBreakingEventChanges } from './scripts/asyncapi.ts';
import { fileChangesOf, parseProjectEvent, terminalControlFrame } from './src/events.ts';

describe('project socket events', () => {
  it('parses each shape the server sends and refuses guesses', () => {
    const deleted = parseProjectEvent({
      type: 'file_changed',
      data: { path: 'a.js', version: 3, source: 'user', operation: 'delete' },
    });
    expect(
      deleted.ok && deleted.event.type === 'file_changed' && deleted.event.data.operation,
    ).toBe('delete');
    // The old guesses of the IDE (`type: 'delete'`, `deleted: true`) are not the contract.
    expect(
      parseProjectEvent({ type: 'file_changed', data: { path: 'a.js', type: 'delete' } }).ok,
    ).toBe(false);
    const unknown = parseProjectEvent({ type: 'weather', data: {} });
    expect(unknown.ok).toBe(false);
    const chat = parseProjectEvent({
      type: 'chat',
      data: { message: { id: 'm', userId: 'u', name: 'Ann', text: 'hi', createdAt: 'now' } },
    });
    expect(chat.ok).toBe(true);
    const presence = parseProjectEvent({
      type: 'presence',
      data: { event: 'file', userId: 'u', name: 'Ann', path: 'src/a.ts', open: true },
    });
    expect(presence.ok).toBe(true);
  });

  it('reads a restore’s one files_changed like each file’s file_changed', () => {
    const restored = parseProjectEvent({
      type: 'files_changed',
      data: {
        source: 'user',
        userId: 'u1',
        files: [
          { path: 'a.js', version: 4, operation: 'write', contentHash: 'h', size: 3 },
          { path: 'b.js', version: 2, operation: 'delete' },
        ],
      },
    });
    expect(restored.ok).toBe(true);
    if (!restored.ok) return;
    expect(fileChangesOf(restored.event)).toEqual([
      {
        path: 'a.js',
        version: 4,
        operation: 'write',
        contentHash: 'h',
        size: 3,
        source: 'user',
        userId: 'u1',
      },
      { path: 'b.js', version: 2, operation: 'delete', source: 'user', userId: 'u1' },
    ]);
    // A file entry must say what a file_changed would (its version).
    expect(
      parseProjectEvent({
        type: 'files_changed',
        data: { source: 'user', files: [{ path: 'a.js', operation: 'write' }] },
      }).ok,
    ).toBe(false);
    const one = parseProjectEvent({
      type: 'file_changed',
      data: { path: 'a.js', version: 3, source: 'claude', operation: 'write' },
    });
    expect(one.ok && fileChangesOf(one.event)).toEqual([
      { path: 'a.js', version: 3, source: 'claude', operation: 'write' },
    ]);
    const other = parseProjectEvent({ type: 'pong', data: {} });
    expect(other.ok && fileChangesOf(other.event)).toEqual([]);
  });

  it('bounds the terminal resize frame', () => {
    expect(terminalControlFrame.safeParse({ type: 'resize', cols: 80, rows: 24 }).success).toBe(
      true,
    );
    expect(terminalControlFrame.safeParse({ type: 'resize', cols: 9999, rows: 24 }).success).toBe(
      false,
    );
  });
});

describe('asyncapi.json', () => {
  it('describes every event and reports a removed message or field as breaking', () => {
    const doc = asyncApiDocument() as any;
    expect(Object.keys(doc.components.messages)).toContain('file_changed');
    expect(Object.keys(doc.components.messages)).toContain('terminal.resize');
    expect(findBreakingEventChanges(doc, structuredClone(doc))).toEqual([]);
    const after = structuredClone(doc);
    delete after.components.messages.membership;
    delete after.components.messages.file_changed.payload.properties.data.properties.version;
    expect(findBreakingEventChanges(doc, after)).toEqual([
      'WebSocket message file_changed: field data.version removed',
      'WebSocket message membership removed',
    ]);
  });
});
