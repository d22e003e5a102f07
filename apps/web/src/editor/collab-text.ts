// Pure conversions between Monaco's world (lines, UTF-16 columns, one end-of-line style) and
// ot-text-unicode's (a flat string addressed in code points). No Monaco import: tested in node.

/** An ot-text-unicode operation: skip N code points, insert a string, delete ({d}). */
export type TextOp = (number | string | { d: number | string })[];

/** A Monaco position (1-based line, 1-based UTF-16 column). */
export interface TextPosition {
  lineNumber: number;
  column: number;
}

/** A Monaco range. */
export interface TextRange {
  startLineNumber: number;
  startColumn: number;
  endLineNumber: number;
  endColumn: number;
}

/** One change of a Monaco content-change event (ranges refer to the text before the event). */
export interface EditorChange {
  range: TextRange;
  text: string;
}

/** An edit to apply to the editor's model (all ranges refer to the text before the op). */
export interface EditorEdit {
  range: TextRange;
  text: string;
}

/** An offset in both units: code points (OT) and UTF-16 code units (JavaScript strings). */
export interface DualOffset {
  cp: number;
  utf16: number;
}

const CR = 13;
const LF = 10;

function isHigh(c: number): boolean {
  return c >= 0xd800 && c <= 0xdbff;
}
function isLow(c: number): boolean {
  return c >= 0xdc00 && c <= 0xdfff;
}

/** Number of code points in a string. */
export function codePointLength(s: string): number {
  let n = s.length;
  for (let i = 0; i < s.length - 1; i++) {
    if (isHigh(s.charCodeAt(i)) && isLow(s.charCodeAt(i + 1))) {
      n--;
      i++;
    }
  }
  return n;
}

/** UTF-16 index of a code-point offset (clamped to the string). */
export function utf16Offset(s: string, cp: number): number {
  let i = 0;
  for (let k = 0; k < cp && i < s.length; k++) {
    i += isHigh(s.charCodeAt(i)) && isLow(s.charCodeAt(i + 1)) ? 2 : 1;
  }
  return i;
}

/** Code-point offset of a UTF-16 index (an index inside a surrogate pair counts the pair). */
export function codePointOffset(s: string, utf16: number): number {
  return codePointLength(s.slice(0, utf16));
}

/**
 * Monaco positions of code-point offsets in `text`, in one pass. Line breaks are what Monaco
 * counts: CRLF, lone CR, lone LF. An offset between the CR and LF of a pair maps to the end of
 * its line.
 */
export function offsetsToPositions(text: string, offsets: number[]): TextPosition[] {
  const order = offsets.map((_, k) => k).sort((a, b) => offsets[a]! - offsets[b]!);
  const out: TextPosition[] = new Array<TextPosition>(offsets.length);
  let i = 0;
  let cp = 0;
  let line = 1;
  let col = 1;
  const n = text.length;
  for (const k of order) {
    const target = offsets[k]!;
    while (cp < target && i < n) {
      const c = text.charCodeAt(i);
      if (c === CR && text.charCodeAt(i + 1) === LF) {
        if (target === cp + 1) break; // between CR and LF: end of this line
        i += 2;
        cp += 2;
        line++;
        col = 1;
      } else if (c === CR || c === LF) {
        i++;
        cp++;
        line++;
        col = 1;
      } else if (isHigh(c) && isLow(text.charCodeAt(i + 1))) {
        i += 2;
        cp++;
        col += 2;
      } else {
        i++;
        cp++;
        col++;
      }
    }
    out[k] = { lineNumber: line, column: col };
  }
  return out;
}

/**
 * Code-point (and UTF-16) offsets of Monaco positions in `text`, in one pass. Columns past the
 * end of a line clamp to it; lines past the end clamp to the end of the text.
 */
export function positionsToOffsets(text: string, positions: TextPosition[]): DualOffset[] {
  const order = positions
    .map((_, k) => k)
    .sort(
      (a, b) =>
        positions[a]!.lineNumber - positions[b]!.lineNumber ||
        positions[a]!.column - positions[b]!.column,
    );
  const out: DualOffset[] = new Array<DualOffset>(positions.length);
  let i = 0;
  let cp = 0;
  let line = 1;
  let col = 1;
  const n = text.length;
  for (const k of order) {
    const { lineNumber, column } = positions[k]!;
    // Move to the start of the target line.
    while (line < lineNumber && i < n) {
      const c = text.charCodeAt(i);
      if (c === CR && text.charCodeAt(i + 1) === LF) {
        i += 2;
        cp += 2;
        line++;
        col = 1;
      } else if (c === CR || c === LF) {
        i++;
        cp++;
        line++;
        col = 1;
      } else if (isHigh(c) && isLow(text.charCodeAt(i + 1))) {
        i += 2;
        cp++;
      } else {
        i++;
        cp++;
      }
    }
    // Then along it, never past its end.
    while (line === lineNumber && col < column && i < n) {
      const c = text.charCodeAt(i);
      if (c === CR || c === LF) break;
      if (isHigh(c) && isLow(text.charCodeAt(i + 1))) {
        i += 2;
        col += 2;
      } else {
        i++;
        col++;
      }
      cp++;
    }
    out[k] = { cp, utf16: i };
  }
  return out;
}

/**
 * The one ot-text-unicode op for all changes of one Monaco content-change event. `before` is the
 * text the changes were made to (their ranges refer to it). Deletes carry the deleted text, so
 * the op can be inverted (undo, and ShareDB's rollback of a refused op).
 */
export function opFromChanges(before: string, changes: readonly EditorChange[]): TextOp {
  const points: TextPosition[] = [];
  for (const ch of changes) {
    points.push(
      { lineNumber: ch.range.startLineNumber, column: ch.range.startColumn },
      { lineNumber: ch.range.endLineNumber, column: ch.range.endColumn },
    );
  }
  const offsets = positionsToOffsets(before, points);
  const spans = changes
    .map((ch, k) => ({ start: offsets[2 * k]!, end: offsets[2 * k + 1]!, text: ch.text, k }))
    .sort((a, b) => a.start.cp - b.start.cp || a.k - b.k);
  const op: TextOp = [];
  let pos = 0;
  for (const s of spans) {
    if (s.start.cp < pos) continue; // overlapping changes never come from Monaco
    if (s.start.cp > pos) op.push(s.start.cp - pos);
    if (s.end.cp > s.start.cp) op.push({ d: before.slice(s.start.utf16, s.end.utf16) });
    if (s.text) op.push(s.text);
    pos = Math.max(s.end.cp, s.start.cp);
  }
  return normalizeOp(op);
}

/** Merges adjacent components of the same kind and drops a trailing skip. */
export function normalizeOp(op: TextOp): TextOp {
  const out: TextOp = [];
  for (const c of op) {
    if (c === '' || c === 0 || (typeof c === 'object' && (c.d === '' || c.d === 0))) continue;
    const last = out[out.length - 1];
    if (typeof c === 'number' && typeof last === 'number') out[out.length - 1] = last + c;
    else if (typeof c === 'string' && typeof last === 'string') out[out.length - 1] = last + c;
    else if (
      typeof c === 'object' &&
      typeof last === 'object' &&
      typeof c.d === 'string' &&
      typeof last.d === 'string'
    )
      out[out.length - 1] = { d: last.d + c.d };
    else out.push(c);
  }
  if (typeof out[out.length - 1] === 'number') out.pop();
  return out;
}

/**
 * The Monaco edits that apply `op` to an editor showing `before` (all ranges refer to `before`,
 * as `model.applyEdits` wants). `touchesLineBreakPair` is true when an edit starts or ends
 * between the CR and LF of a pair: the editor cannot express that, so the caller resynchronises.
 */
export function editsFromOp(
  before: string,
  op: TextOp,
): { edits: EditorEdit[]; touchesLineBreakPair: boolean } {
  const spans: { start: number; end: number; text: string }[] = [];
  let pos = 0;
  for (const c of op) {
    if (typeof c === 'number') pos += c;
    else if (typeof c === 'string') {
      const last = spans[spans.length - 1];
      if (last && last.end === pos) last.text += c;
      else spans.push({ start: pos, end: pos, text: c });
    } else {
      const len = typeof c.d === 'number' ? c.d : codePointLength(c.d);
      const last = spans[spans.length - 1];
      if (last && last.end === pos) last.end += len;
      else spans.push({ start: pos, end: pos + len, text: '' });
      pos += len;
    }
  }
  const offsets: number[] = [];
  for (const s of spans) offsets.push(s.start, s.end);
  const positions = offsetsToPositions(before, offsets);
  let touchesLineBreakPair = false;
  if (/\r\n/.test(before)) {
    const dual = positionsToOffsets(before, positions);
    touchesLineBreakPair = dual.some((d, k) => d.cp !== offsets[k]);
  }
  const edits = spans.map((s, k) => {
    const a = positions[2 * k]!;
    const b = positions[2 * k + 1]!;
    return {
      range: {
        startLineNumber: a.lineNumber,
        startColumn: a.column,
        endLineNumber: b.lineNumber,
        endColumn: b.column,
      },
      text: s.text,
    };
  });
  return { edits, touchesLineBreakPair };
}

/** Applies an op to a string (the same result as ot-text-unicode's `apply`). */
export function applyOp(text: string, op: TextOp): string {
  let out = '';
  let i = 0; // UTF-16 index in text
  for (const c of op) {
    if (typeof c === 'number') {
      const j = i + utf16Offset(text.slice(i), c);
      out += text.slice(i, j);
      i = j;
    } else if (typeof c === 'string') out += c;
    else {
      const len = typeof c.d === 'number' ? c.d : codePointLength(c.d);
      i += utf16Offset(text.slice(i), len);
    }
  }
  return out + text.slice(i);
}

/** The end-of-line style most of the text uses (LF for a text without line breaks). */
export function dominantEol(text: string): '\n' | '\r\n' {
  const crlf = text.match(/\r\n/g)?.length ?? 0;
  const all = text.match(/\r\n|\r|\n/g)?.length ?? 0;
  return crlf > all - crlf ? '\r\n' : '\n';
}

/** The text with every line break (CRLF, CR, LF) written as `eol`: what Monaco shows. */
export function withEol(text: string, eol: '\n' | '\r\n'): string {
  return text.replace(/\r\n|\r|\n/g, eol);
}

/**
 * The smallest single-span op turning `from` into `to` (common prefix and suffix kept). For
 * drafts and resynchronisation, not for typing.
 */
export function diffOp(from: string, to: string): TextOp {
  if (from === to) return [];
  let start = 0;
  const max = Math.min(from.length, to.length);
  while (start < max && from.charCodeAt(start) === to.charCodeAt(start)) start++;
  let endFrom = from.length;
  let endTo = to.length;
  while (
    endFrom > start &&
    endTo > start &&
    from.charCodeAt(endFrom - 1) === to.charCodeAt(endTo - 1)
  ) {
    endFrom--;
    endTo--;
  }
  // Never split a surrogate pair or a CRLF pair.
  while (start > 0 && (isLow(from.charCodeAt(start)) || isLow(to.charCodeAt(start)))) start--;
  while (
    start > 0 &&
    from.charCodeAt(start - 1) === CR &&
    (from.charCodeAt(start) === LF || to.charCodeAt(start) === LF)
  )
    start--;
  while (endFrom < from.length && endTo < to.length && isLow(from.charCodeAt(endFrom))) {
    endFrom++;
    endTo++;
  }
  const op: TextOp = [codePointLength(from.slice(0, start))];
  if (endFrom > start) op.push({ d: from.slice(start, endFrom) });
  if (endTo > start) op.push(to.slice(start, endTo));
  return normalizeOp(op);
}
