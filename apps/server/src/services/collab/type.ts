import ShareDB from 'sharedb';
import { type as textUnicode } from 'ot-text-unicode';

/** A text op of `ot-text-unicode`: skips (numbers), inserts (strings), deletes (`{d}`). */
export type TextOp = (number | string | { d: number | string })[];

/**
 * What a collaborator's presence carries (API.md › Realtime): the selection in code points,
 * `[anchor, head]`, and who they are. The server overwrites `userId` and `name` with the
 * sender's own (a client cannot speak for someone else).
 */
export interface CollabPresence {
  sel: [number, number];
  name?: string;
  color?: string;
  userId?: string;
}

/**
 * `ot-text-unicode` extended with `transformPresence`, which ShareDB needs for document presence:
 * moves `sel` over an op with the type's `transformSelection` (or `transformPosition` at each
 * end, so a caret at the insertion point stays put for others and moves on for its own op).
 * Server and clients register this same type (`registerCollabType`).
 */
export const collabTextType = {
  ...textUnicode,
  transformPresence(presence: unknown, op: TextOp, isOwnOp: boolean): unknown {
    if (!presence || typeof presence !== 'object') return presence;
    const p = presence as Partial<CollabPresence>;
    if (!Array.isArray(p.sel) || p.sel.length !== 2) return presence;
    const [anchor, head] = p.sel;
    if (typeof anchor !== 'number' || typeof head !== 'number') return presence;
    const sel: [number, number] = isOwnOp
      ? [movePast(anchor, op), movePast(head, op)]
      : (textUnicode.transformSelection([anchor, head], op as never) as [number, number]);
    return { ...p, sel };
  },
};

/** A position after the author's own op: an insert at the caret leaves the caret after it. */
function movePast(pos: number, op: TextOp): number {
  let at = 0; // position in the old text
  let shift = 0;
  for (const c of op) {
    if (typeof c === 'number') {
      if (pos < at + c) break; // a caret at the end of a skip may still get an insert
      at += c;
    } else if (typeof c === 'string') {
      if (at > pos) break;
      shift += [...c].length;
    } else {
      const n = typeof c.d === 'number' ? c.d : [...c.d].length;
      if (pos <= at) break;
      const removed = Math.min(n, pos - at);
      shift -= removed;
      at += n;
    }
  }
  return Math.max(0, pos + shift);
}

/** `http://sharejs.org/types/text-unicode`: the type every collab document has. */
export const COLLAB_TYPE_URI = textUnicode.uri;

let registered = false;

/** Registers {@link collabTextType} with ShareDB (server side; idempotent). */
export function registerCollabType(): void {
  if (registered) return;
  ShareDB.types.register(collabTextType as never);
  registered = true;
}
