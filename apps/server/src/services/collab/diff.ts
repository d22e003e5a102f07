import { diffArrays } from 'diff';
import { type as textUnicode } from 'ot-text-unicode';
import type { TextOp } from './type.ts';

/** Beyond this many lines in the changed middle, one replace op instead of a line diff. */
const MAX_DIFF_LINES = 20_000;

/**
 * The `ot-text-unicode` op that turns `from` into `to` (positions in code points): the common
 * head and tail are kept, and the middle is diffed by lines, so a writer that changed two
 * distant lines touches only those (collaborators' edits elsewhere, and their cursors, stay).
 * Returns `[]` when the texts are equal.
 */
export function textDiffOp(from: string, to: string): TextOp {
  if (from === to) return [];
  const a = [...from];
  const b = [...to];
  let head = 0;
  while (head < a.length && head < b.length && a[head] === b[head]) head++;
  let tail = 0;
  while (
    tail < a.length - head &&
    tail < b.length - head &&
    a[a.length - 1 - tail] === b[b.length - 1 - tail]
  ) {
    tail++;
  }
  const oldMid = a.slice(head, a.length - tail).join('');
  const newMid = b.slice(head, b.length - tail).join('');
  const op: TextOp = [];
  const skip = (n: number) => {
    if (n === 0) return;
    const last = op[op.length - 1];
    if (typeof last === 'number') op[op.length - 1] = last + n;
    else op.push(n);
  };
  const ins = (s: string) => {
    if (!s) return;
    const last = op[op.length - 1];
    if (typeof last === 'string') op[op.length - 1] = last + s;
    else op.push(s);
  };
  const del = (s: string) => {
    if (!s) return;
    const last = op[op.length - 1];
    if (last !== undefined && typeof last === 'object') {
      op[op.length - 1] = {
        d: (typeof last.d === 'number' ? last.d : [...last.d].length) + [...s].length,
      };
    } else op.push({ d: [...s].length });
  };
  skip(head);
  const oldLines = splitLines(oldMid);
  const newLines = splitLines(newMid);
  if (
    oldLines.length + newLines.length > MAX_DIFF_LINES ||
    oldLines.length === 0 ||
    newLines.length === 0
  ) {
    del(oldMid);
    ins(newMid);
  } else {
    for (const part of diffArrays(oldLines, newLines)) {
      const text = part.value.join('');
      if (part.added) ins(text);
      else if (part.removed) del(text);
      else skip([...text].length);
    }
  }
  // Trailing skips are implicit in ot-text-unicode; normalise by trimming them.
  while (typeof op[op.length - 1] === 'number') op.pop();
  return textUnicode.normalize(op as never) as TextOp;
}

/** Lines with their endings kept (`\n`, `\r\n`, or none for the last). */
function splitLines(s: string): string[] {
  const out: string[] = [];
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    if (s[i] === '\n') {
      out.push(s.slice(start, i + 1));
      start = i + 1;
    }
  }
  if (start < s.length) out.push(s.slice(start));
  return out;
}
