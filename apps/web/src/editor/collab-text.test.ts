// @vitest-environment node
import { describe, expect, test } from 'vitest';
import { type as textType } from 'ot-text-unicode';
import {
  applyOp,
  codePointLength,
  diffOp,
  dominantEol,
  editsFromOp,
  offsetsToPositions,
  opFromChanges,
  positionsToOffsets,
  utf16Offset,
  withEol,
  type EditorEdit,
  type TextOp,
} from './collab-text.ts';

/** Applies edits whose ranges all refer to `text` (as Monaco's applyEdits does), LF/CRLF aware. */
function applyEdits(text: string, edits: EditorEdit[]): string {
  const lines = text.split(/\r\n|\r|\n/);
  const breaks = text.match(/\r\n|\r|\n/g) ?? [];
  const offsetOf = (line: number, col: number): number => {
    let o = 0;
    for (let l = 0; l < line - 1; l++) o += lines[l]!.length + breaks[l]!.length;
    return o + Math.min(col - 1, lines[line - 1]!.length);
  };
  const spans = edits
    .map((e) => ({
      a: offsetOf(e.range.startLineNumber, e.range.startColumn),
      b: offsetOf(e.range.endLineNumber, e.range.endColumn),
      t: e.text,
    }))
    .sort((x, y) => y.a - x.a);
  let out = text;
  for (const s of spans) out = out.slice(0, s.a) + s.t + out.slice(s.b);
  return out;
}

describe('code points and UTF-16', () => {
  test('emoji are one code point and two UTF-16 units', () => {
    const s = 'a😀b👍🏽c';
    expect(codePointLength(s)).toBe(6);
    expect(utf16Offset(s, 2)).toBe(3); // after the grinning face
    expect(utf16Offset(s, 99)).toBe(s.length);
  });

  test('positions ↔ offsets across CRLF, lone CR and surrogate pairs', () => {
    const text = 'ab\r\n😀x\ry\nz';
    // code points: a b \r \n 😀 x \r y \n z  → 10
    const positions = offsetsToPositions(text, [0, 2, 3, 4, 5, 6, 7, 9, 10]);
    expect(positions).toEqual([
      { lineNumber: 1, column: 1 },
      { lineNumber: 1, column: 3 },
      { lineNumber: 1, column: 3 }, // between CR and LF: end of the line
      { lineNumber: 2, column: 1 },
      { lineNumber: 2, column: 3 }, // after the emoji: UTF-16 column
      { lineNumber: 2, column: 4 },
      { lineNumber: 3, column: 1 },
      { lineNumber: 4, column: 1 },
      { lineNumber: 4, column: 2 },
    ]);
    const back = positionsToOffsets(text, positions);
    expect(back.map((d) => d.cp)).toEqual([0, 2, 2, 4, 5, 6, 7, 9, 10]);
    expect(back[4]!.utf16).toBe(6);
    // Past the end of a line or the text: clamped.
    expect(positionsToOffsets(text, [{ lineNumber: 1, column: 50 }])[0]!.cp).toBe(2);
    expect(positionsToOffsets(text, [{ lineNumber: 9, column: 1 }])[0]!.cp).toBe(10);
  });
});

describe('one op per content-change event', () => {
  test('several changes of one event (ranges against the text before it) become one op', () => {
    // Monaco lists them in descending order; both refer to the original text.
    const before = 'a\r\nb\r\nc';
    const op = opFromChanges(before, [
      { range: { startLineNumber: 3, startColumn: 1, endLineNumber: 3, endColumn: 2 }, text: '😀' },
      {
        range: { startLineNumber: 1, startColumn: 2, endLineNumber: 1, endColumn: 2 },
        text: 'X\r\nY',
      },
    ]);
    expect(op).toEqual([1, 'X\r\nY', 5, { d: 'c' }, '😀']);
    expect(textType.apply(before, op as never)).toBe('aX\r\nY\r\nb\r\n😀');
  });

  test('deleting an emoji and a CRLF deletes whole code points and carries their text', () => {
    const before = 'x😀\r\ny';
    const op = opFromChanges(before, [
      { range: { startLineNumber: 1, startColumn: 2, endLineNumber: 2, endColumn: 1 }, text: '' },
    ]);
    expect(op).toEqual([1, { d: '😀\r\n' }]);
    expect(textType.apply(before, op as never)).toBe('xy');
    expect(textType.apply('xy', textType.invert!(op as never))).toBe(before);
  });

  test('multi-cursor typing before emoji on every line', () => {
    const before = '😀1\n😀2\n😀3';
    const changes = [3, 2, 1].map((line) => ({
      range: { startLineNumber: line, startColumn: 3, endLineNumber: line, endColumn: 3 },
      text: '!',
    }));
    const op = opFromChanges(before, changes);
    expect(textType.apply(before, op as never)).toBe('😀!1\n😀!2\n😀!3');
  });

  test('a large paste is one insert', () => {
    const paste = 'line 👍\r\n'.repeat(20_000);
    const before = 'start\r\nend';
    const op = opFromChanges(before, [
      {
        range: { startLineNumber: 2, startColumn: 1, endLineNumber: 2, endColumn: 1 },
        text: paste,
      },
    ]);
    expect(op).toEqual([7, paste]);
  });
});

describe('remote ops into the editor', () => {
  const seeds = [1, 2, 3, 4, 5, 6, 7, 8];
  const alphabet = ['a', 'b', ' ', '\t', '😀', '👍🏽', 'é', '\r\n', '\n', 'ж'];

  function rng(seed: number): () => number {
    let s = seed >>> 0;
    return () => {
      s = (s * 1664525 + 1013904223) >>> 0;
      return s / 2 ** 32;
    };
  }

  test.each(seeds)(
    'random ops on emoji/CRLF text map to equivalent editor edits (seed %i)',
    (seed) => {
      const r = rng(seed);
      let text = 'héllo 😀\r\nwörld\r\n';
      for (let step = 0; step < 200; step++) {
        const len = codePointLength(text);
        const op: TextOp = [];
        let pos = 0;
        const parts = 1 + Math.floor(r() * 3);
        for (let p = 0; p < parts && pos <= len; p++) {
          const skip = Math.floor(r() * (len - pos + 1));
          op.push(skip);
          pos += skip;
          if (r() < 0.5 && pos < len) {
            const n = 1 + Math.floor(r() * Math.min(5, len - pos));
            const chars = [...text].slice(pos, pos + n).join('');
            op.push({ d: chars });
            pos += n;
          }
          let ins = '';
          for (let k = Math.floor(r() * 4); k > 0; k--)
            ins += alphabet[Math.floor(r() * alphabet.length)];
          if (ins) op.push(ins);
        }
        const norm = textType.normalize(op as never) as TextOp;
        const after = textType.apply(text, norm as never);
        expect(applyOp(text, norm)).toBe(after);
        const { edits, touchesLineBreakPair } = editsFromOp(text, norm);
        if (!touchesLineBreakPair) {
          // What the editor shows (one EOL) after the edits equals the document after the op.
          expect(withEol(applyEdits(text, edits), '\n')).toBe(withEol(after, '\n'));
        }
        text = after;
      }
    },
  );
});

test('end-of-line style: the document decides', () => {
  expect(dominantEol('a\r\nb\r\nc\n')).toBe('\r\n');
  expect(dominantEol('a\nb\r\nc\n')).toBe('\n');
  expect(dominantEol('no breaks')).toBe('\n');
  expect(withEol('a\nb\r\nc\rd', '\r\n')).toBe('a\r\nb\r\nc\r\nd');
});

test('diffOp changes only the middle, never splitting emoji', () => {
  const from = 'keep 😀 this';
  const to = 'keep 😃 this';
  const op = diffOp(from, to);
  expect(textType.apply(from, op as never)).toBe(to);
  expect(op).toEqual([5, { d: '😀' }, '😃']);
  expect(diffOp('same', 'same')).toEqual([]);
});
