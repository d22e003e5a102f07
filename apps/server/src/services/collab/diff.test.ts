import { type as textUnicode } from 'ot-text-unicode';
import { describe, expect, it } from 'vitest';
import { textDiffOp } from './diff.ts';
import { collabTextType } from './type.ts';

const PIECES = ['a', 'b', '\n', '\r\n', '\t', '😀', '👩‍👩‍👧', 'é', 'line two\n', 'x'];

function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function text(rng: () => number, max: number): string {
  let s = '';
  const n = Math.floor(rng() * max);
  for (let i = 0; i < n; i++) s += PIECES[Math.floor(rng() * PIECES.length)]!;
  return s;
}

describe('textDiffOp', () => {
  it('turns one text into the other, in code points (emoji, CRLF, tabs), for 500 random pairs', () => {
    const rng = prng(13);
    for (let i = 0; i < 500; i++) {
      const from = text(rng, 40);
      const to = rng() < 0.5 ? text(rng, 40) : from.replace(/a/g, 'A😀') + text(rng, 3);
      const op = textDiffOp(from, to);
      expect(textUnicode.apply(from, op as never)).toBe(to);
    }
  });

  it('touches only the changed lines, so typing elsewhere survives a merge', () => {
    const base = 'one\ntwo\nthree\nfour\n';
    const writer = textDiffOp(base, 'ONE\ntwo\nthree\nFOUR\n');
    const typing = [10, '!']; // inside "three"
    const merged = textUnicode.apply(
      textUnicode.apply(base, typing as never),
      textUnicode.transform(writer as never, typing as never, 'left'),
    );
    expect(merged).toBe('ONE\ntwo\nth!ree\nFOUR\n');
  });

  it('is empty for equal texts', () => {
    expect(textDiffOp('same 😀', 'same 😀')).toEqual([]);
  });
});

describe('collabTextType.transformPresence', () => {
  it("moves others' selections with an op and the author's caret past their own insert", () => {
    const p = { sel: [3, 5] as [number, number], name: 'n' };
    expect(collabTextType.transformPresence(p, [1, '😀😀'], false)).toEqual({
      sel: [5, 7],
      name: 'n',
    });
    expect(collabTextType.transformPresence({ sel: [2, 2] }, [2, 'ab'], true)).toEqual({
      sel: [4, 4],
    });
    expect(collabTextType.transformPresence({ sel: [2, 2] }, [2, 'ab'], false)).toEqual({
      sel: [2, 2],
    });
    expect(collabTextType.transformPresence({ sel: [6, 6] }, [1, { d: 3 }], false)).toEqual({
      sel: [3, 3],
    });
    expect(collabTextType.transformPresence(null, [1, 'x'], false)).toBeNull();
  });
});
