// @vitest-environment node
import { expect, test } from 'vitest';
import { type as textType } from 'ot-text-unicode';
import type { TextOp } from './collab-text.ts';
import { CollabUndoStack } from './collab-undo.ts';

const apply = (text: string, op: TextOp): string => textType.apply(text, op as never);

/** A document with one local person (undo stack) and remote ops arriving. */
function doc(initial: string) {
  let t = 1000;
  const stack = new CollabUndoStack({ now: () => t });
  let text = initial;
  return {
    get text() {
      return text;
    },
    local(op: TextOp, gapMs = 2000) {
      t += gapMs;
      text = apply(text, op);
      stack.local(op);
    },
    remote(op: TextOp) {
      text = apply(text, op);
      stack.remote(op);
    },
    undo() {
      const op = stack.undo();
      if (op) text = apply(text, op);
      return op;
    },
    redo() {
      const op = stack.redo();
      if (op) text = apply(text, op);
      return op;
    },
  };
}

test('undo removes only my text, not what someone typed meanwhile', () => {
  const d = doc('hello');
  d.local([5, ' world']);
  d.remote(['>> ']); // someone types at the start
  d.remote([8, '!!']); // and in the middle of my word
  expect(d.text).toBe('>> hello!! world');
  d.undo();
  expect(d.text).toBe('>> hello!!');
  d.redo();
  expect(d.text).toBe('>> hello!! world');
});

test('typing then backspacing, in separate steps, undoes back to the start', () => {
  const d = doc('');
  d.local(['abc']);
  d.local([2, { d: 'c' }]); // backspace later (not grouped)
  expect(d.text).toBe('ab');
  d.undo();
  expect(d.text).toBe('abc');
  d.undo();
  expect(d.text).toBe('');
  d.redo();
  d.redo();
  expect(d.text).toBe('ab');
});

test('quick typing is one undo step; a pause starts another', () => {
  const d = doc('');
  d.local(['a'], 10);
  d.local([1, 'b'], 100);
  d.local([2, 'c'], 100);
  d.local([3, ' next'], 5000);
  expect(d.text).toBe('abc next');
  d.undo();
  expect(d.text).toBe('abc');
  d.undo();
  expect(d.text).toBe('');
  expect(d.undo()).toBeNull();
});

test('a remote delete of my text leaves nothing to undo there', () => {
  const d = doc('x');
  d.local([1, 'yz']);
  d.remote([1, { d: 'yz' }]);
  expect(d.text).toBe('x');
  d.undo();
  expect(d.text).toBe('x');
});

test('undo of a delete brings the text back where it now is, with emoji intact', () => {
  const d = doc('a😀b\r\nc');
  d.local([1, { d: '😀b\r\n' }]);
  expect(d.text).toBe('ac');
  d.remote(['>>']);
  d.undo();
  expect(d.text).toBe('>>a😀b\r\nc');
});
