import { type as textType } from 'ot-text-unicode';
import { codePointLength, type TextOp } from './collab-text.ts';

/**
 * Undo/redo of one person's own edits in a shared document. Each entry is the inverse of a
 * local op, valid at the document state right after that op; an op from someone else is
 * rebased through the stack (each entry transformed over it, and it over each entry's inverse
 * on the way down), so undo never removes another person's text and lands where the text moved.
 * Quick typing is grouped into one entry (as editors do), composed exactly.
 */
export class CollabUndoStack {
  #undo: TextOp[] = [];
  #redo: TextOp[] = [];
  #lastLocalAt = 0;
  #mergeable = false;
  readonly #mergeWindowMs: number;
  readonly #limit: number;
  readonly #now: () => number;

  constructor(opts: { mergeWindowMs?: number; limit?: number; now?: () => number } = {}) {
    this.#mergeWindowMs = opts.mergeWindowMs ?? 1000;
    this.#limit = opts.limit ?? 500;
    this.#now = opts.now ?? Date.now;
  }

  get canUndo(): boolean {
    return this.#undo.length > 0;
  }

  get canRedo(): boolean {
    return this.#redo.length > 0;
  }

  /** A local edit (its deletes carry their text). Clears redo. */
  local(op: TextOp): void {
    if (!op.length) return;
    const inverse = invert(op);
    const now = this.#now();
    const small = isSmall(op);
    const top = this.#undo[this.#undo.length - 1];
    if (top && this.#mergeable && small && now - this.#lastLocalAt < this.#mergeWindowMs) {
      this.#undo[this.#undo.length - 1] = compose(inverse, top);
    } else {
      this.#undo.push(inverse);
      if (this.#undo.length > this.#limit) this.#undo.shift();
    }
    this.#mergeable = small;
    this.#lastLocalAt = now;
    this.#redo = [];
  }

  /** Someone else's op, applied to the current document. */
  remote(op: TextOp): void {
    if (!op.length) return;
    rebase(this.#undo, op);
    rebase(this.#redo, op);
    this.#mergeable = false;
  }

  /** The op that undoes the last own edit (to submit and apply), or null. */
  undo(): TextOp | null {
    const op = popNonEmpty(this.#undo);
    if (!op) return null;
    this.#redo.push(invert(op));
    this.#mergeable = false;
    return op;
  }

  /** The op that redoes the last undone edit, or null. */
  redo(): TextOp | null {
    const op = popNonEmpty(this.#redo);
    if (!op) return null;
    this.#undo.push(invert(op));
    this.#mergeable = false;
    return op;
  }

  /** Forgets everything (the document was replaced). */
  clear(): void {
    this.#undo = [];
    this.#redo = [];
    this.#mergeable = false;
  }
}

function popNonEmpty(stack: TextOp[]): TextOp | null {
  while (stack.length) {
    const op = stack.pop()!;
    if (op.length) return op;
  }
  return null;
}

function rebase(stack: TextOp[], op: TextOp): void {
  let r = op;
  for (let k = stack.length - 1; k >= 0; k--) {
    const u = stack[k]!;
    stack[k] = textType.transform(u as never, r as never, 'left') as TextOp;
    r = textType.transform(r as never, u as never, 'right') as TextOp;
  }
}

function invert(op: TextOp): TextOp {
  return textType.invert!(op as never) as TextOp;
}

function compose(a: TextOp, b: TextOp): TextOp {
  return textType.compose(a as never, b as never) as TextOp;
}

/** Typing or deleting a character or two, without a line break: grouped with its neighbours. */
function isSmall(op: TextOp): boolean {
  let n = 0;
  for (const c of op) {
    if (typeof c === 'string') {
      if (/[\r\n]/.test(c)) return false;
      n += codePointLength(c);
    } else if (typeof c === 'object') n += typeof c.d === 'number' ? c.d : codePointLength(c.d);
  }
  return n <= 2;
}
