import { createHash } from 'node:crypto';
import { diffArrays } from 'diff';

/** A contiguous change of one file between a changeset's before and after (no context lines). */
export interface HunkSpec {
  /** Stable: a hash of the path, the positions and the lines. */
  id: string;
  /** 1-based first old line (for an insertion: the line after which it goes, 0 at the top). */
  oldStart: number;
  oldLines: number;
  newStart: number;
  newLines: number;
  /** The old and new lines, each with its line terminator (the last may have none). */
  oldText: string[];
  newText: string[];
  /** Up to {@link contextLines} unchanged lines around the hunk, in the before and after text. */
  oldBefore: string[];
  oldAfter: string[];
  newBefore: string[];
  newAfter: string[];
  /** The hunk as unified diff text (`@@ -a,b +c,d @@` and its lines). */
  diff: string;
  /** The whole file appears or disappears (create / delete of the file). */
  wholeFile: 'create' | 'delete' | null;
}

const contextLines = 3;

/** Lines with their terminators: `a\nb` → [`a\n`, `b`]; '' → []. */
export function splitLines(text: string): string[] {
  return text === '' ? [] : text.split(/(?<=\n)/);
}

/**
 * The hunks that turn `before` into `after` (null: the file did not exist). A created or
 * deleted file is one hunk. A diff too expensive to compute (over ~1 s) is one hunk as well.
 */
export function computeHunks(
  filePath: string,
  before: string | null,
  after: string | null,
): HunkSpec[] {
  const a = splitLines(before ?? '');
  const b = splitLines(after ?? '');
  if (before === null || after === null) {
    return [makeHunk(filePath, a, b, 0, 0, before === null ? 'create' : 'delete')];
  }
  if (before === after) return [];
  const parts = diffArrays(a, b, { timeout: 1000 });
  if (!parts) return [makeHunk(filePath, a, b, 0, 0, null)];
  const hunks: HunkSpec[] = [];
  let oldIdx = 0;
  let newIdx = 0;
  let pending: { oldFrom: number; newFrom: number; oldTo: number; newTo: number } | undefined;
  const flush = () => {
    if (!pending) return;
    hunks.push(
      makeHunk(
        filePath,
        a,
        b,
        pending.oldFrom,
        pending.newFrom,
        null,
        pending.oldTo - pending.oldFrom,
        pending.newTo - pending.newFrom,
      ),
    );
    pending = undefined;
  };
  for (const part of parts) {
    const n = part.value.length;
    if (!part.added && !part.removed) {
      flush();
      oldIdx += n;
      newIdx += n;
      continue;
    }
    pending ??= { oldFrom: oldIdx, newFrom: newIdx, oldTo: oldIdx, newTo: newIdx };
    if (part.removed) {
      oldIdx += n;
      pending.oldTo = oldIdx;
    } else {
      newIdx += n;
      pending.newTo = newIdx;
    }
  }
  flush();
  return hunks;
}

function makeHunk(
  filePath: string,
  a: string[],
  b: string[],
  oldFrom: number,
  newFrom: number,
  wholeFile: 'create' | 'delete' | null,
  oldCount = a.length - oldFrom,
  newCount = b.length - newFrom,
): HunkSpec {
  const oldText = a.slice(oldFrom, oldFrom + oldCount);
  const newText = b.slice(newFrom, newFrom + newCount);
  const oldStart = oldCount === 0 ? oldFrom : oldFrom + 1;
  const newStart = newCount === 0 ? newFrom : newFrom + 1;
  const id = createHash('sha256')
    .update(
      JSON.stringify([filePath, oldStart, oldCount, newStart, newCount, oldText, newText]),
      'utf8',
    )
    .digest('hex')
    .slice(0, 24);
  const header = `@@ -${oldStart},${oldCount} +${newStart},${newCount} @@\n`;
  const body = [
    ...oldText.map((l) => diffLine('-', l)),
    ...newText.map((l) => diffLine('+', l)),
  ].join('');
  return {
    id,
    oldStart,
    oldLines: oldCount,
    newStart,
    newLines: newCount,
    oldText,
    newText,
    oldBefore: a.slice(Math.max(0, oldFrom - contextLines), oldFrom),
    oldAfter: a.slice(oldFrom + oldCount, oldFrom + oldCount + contextLines),
    newBefore: b.slice(Math.max(0, newFrom - contextLines), newFrom),
    newAfter: b.slice(newFrom + newCount, newFrom + newCount + contextLines),
    diff: header + body,
    wholeFile,
  };
}

function diffLine(sign: '-' | '+', line: string): string {
  return line.endsWith('\n') ? `${sign}${line}` : `${sign}${line}\n\\ No newline at end of file\n`;
}

/**
 * Replaces `from` by `to` in `current`, where `from` sits between `before` and `after` (context
 * lines): see {@link locateLines}.
 * @returns the new lines, or undefined when the place cannot be found.
 */
export function swapLines(
  current: string[],
  change: { from: string[]; to: string[]; before: string[]; after: string[]; expected: number },
): string[] | undefined {
  const at = locateLines(current, change);
  if (at === undefined) return undefined;
  return [...current.slice(0, at), ...change.to, ...current.slice(at + change.from.length)];
}

/**
 * Where `from` is in `current` (0-based index of its first line), sitting between `before`
 * and `after` (context lines); `expected` is the index where it was (the file may have moved
 * on since). The widest context that matches wins; among several places, the one nearest
 * `expected`. Without any context line, `from` must be non-empty and occur once.
 * @returns the index, or undefined when the place cannot be found.
 */
export function locateLines(
  current: string[],
  change: { from: string[]; before: string[]; after: string[]; expected: number },
): number | undefined {
  const { from, before, after, expected } = change;
  const widest = Math.max(before.length, after.length);
  for (let k = widest; k >= 0; k--) {
    const pre = before.slice(Math.max(0, before.length - k));
    const post = after.slice(0, k);
    if (pre.length + post.length + from.length === 0) continue;
    const found: number[] = [];
    for (let p = pre.length; p + from.length + post.length <= current.length; p++) {
      if (
        equalAt(current, p - pre.length, pre) &&
        equalAt(current, p, from) &&
        equalAt(current, p + from.length, post)
      ) {
        found.push(p);
      }
    }
    // Context shorter than asked at the file's edges anchors to the edge.
    const anchored = found.filter(
      (p) =>
        (before.length >= k || p - pre.length === 0) &&
        (after.length >= k || p + from.length + post.length === current.length),
    );
    const candidates = anchored.length ? anchored : found;
    if (candidates.length === 0) continue;
    if (pre.length + post.length === 0 && candidates.length > 1) return undefined;
    return candidates.reduce((best, p) =>
      Math.abs(p - expected) < Math.abs(best - expected) ? p : best,
    );
  }
  return undefined;
}

function equalAt(lines: string[], at: number, want: string[]): boolean {
  if (at < 0 || at + want.length > lines.length) return false;
  for (let i = 0; i < want.length; i++) if (lines[at + i] !== want[i]) return false;
  return true;
}
