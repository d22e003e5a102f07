import { useEffect, useState } from 'react';
import { colorFor } from '../editor/collab-connection.ts';
import type { ProjectEvent, ProjectSocket } from '../lib/project-socket.ts';
import './session-chat.css';

/** Someone connected to the project, and the files they have open in the editor. */
export interface Collaborator {
  userId: string;
  name: string;
  /** Paths open in their editor (from `presence` `file` events), in the order opened. */
  files: string[];
}

interface Entry extends Collaborator {
  /** Sockets of theirs we have seen join and not yet leave (tabs, windows). */
  sockets: number;
}

/**
 * Who is in the project, from the project socket's `presence` events: `snapshot` (on every
 * connect: replaces everything), `join`/`leave` (counted per socket, so closing one of two tabs
 * keeps the person), `file` (`{path, open}`: which files each person has open).
 */
export class PresenceTracker {
  #people = new Map<string, Entry>();

  /** Applies one event; true when the list changed. */
  apply(event: ProjectEvent): boolean {
    if (event.type !== 'presence') return false;
    const d = event.data;
    if (d.event === 'snapshot') {
      const next = new Map<string, Entry>();
      for (const u of d.users) {
        // Files open are known from `file` events (a snapshot carries none).
        const files = this.#people.get(u.userId)?.files ?? [];
        next.set(u.userId, { userId: u.userId, name: u.name, files: [...files], sockets: 1 });
      }
      this.#people = next;
      return true;
    }
    const known = this.#people.get(d.userId);
    if (d.event === 'file') {
      const entry = known ?? { userId: d.userId, name: d.name, files: [], sockets: 1 };
      this.#people.set(d.userId, entry);
      entry.files = entry.files.filter((f) => f !== d.path);
      if (d.open) entry.files.push(d.path);
    } else if (d.event === 'join') {
      if (known) known.sockets++;
      else this.#people.set(d.userId, { userId: d.userId, name: d.name, files: [], sockets: 1 });
    } else {
      if (!known) return false;
      if (--known.sockets <= 0) this.#people.delete(d.userId);
    }
    return true;
  }

  /** Everyone here, in the order they arrived. */
  people(): Collaborator[] {
    return [...this.#people.values()].map(({ userId, name, files }) => ({
      userId,
      name,
      files: [...files],
    }));
  }
}

/** What the workbench shows: the people here and, per path, who else has it open. */
export interface Presence {
  people: Collaborator[];
  /** Path → the other people who have it open (never yourself). */
  openBy: Map<string, Collaborator[]>;
}

/** Follows `presence` events on the project socket (null until it exists). */
export function usePresence(socket: ProjectSocket | null, selfId: string | undefined): Presence {
  const [presence, setPresence] = useState<Presence>({ people: [], openBy: new Map() });
  useEffect(() => {
    if (!socket) return;
    const tracker = new PresenceTracker();
    return socket.on((event) => {
      if (!tracker.apply(event)) return;
      const people = tracker.people();
      const openBy = new Map<string, Collaborator[]>();
      for (const p of people) {
        if (p.userId === selfId) continue;
        for (const f of p.files) openBy.set(f, [...(openBy.get(f) ?? []), p]);
      }
      setPresence({ people, openBy });
    });
  }, [socket, selfId]);
  return presence;
}

/** Up to two initials of a name ("Ada Lovelace" → "AL"), "?" for none. */
export function initials(name: string): string {
  const words = name.trim().split(/\s+/u).filter(Boolean);
  if (words.length === 0) return '?';
  const first = [...words[0]!][0] ?? '';
  const last = words.length > 1 ? ([...words[words.length - 1]!][0] ?? '') : '';
  return (first + last).toUpperCase();
}

/** A round badge with someone's initials in their colour (the colour of their cursor). */
export function Avatar(props: { userId: string; name: string; size?: number; you?: boolean }) {
  const size = props.size ?? 24;
  const label = props.you ? `${props.name || 'You'} (you)` : props.name || 'Someone';
  return (
    <span
      className={`avatar ${props.you ? 'avatar-you' : ''}`}
      style={{
        background: colorFor(props.userId),
        width: size,
        height: size,
        fontSize: Math.round(size * 0.42),
      }}
      title={label}
      aria-label={label}
      role="img"
      data-user-id={props.userId}
    >
      {initials(props.name)}
    </span>
  );
}

/** The title bar's "who is here": the others first, then you. */
export function PresenceAvatars(props: { people: Collaborator[]; selfId: string | undefined }) {
  const others = props.people.filter((p) => p.userId !== props.selfId);
  const self = props.people.find((p) => p.userId === props.selfId);
  if (!others.length && !self) return null;
  const shown = others.slice(0, 6);
  return (
    <div
      className="presence-avatars"
      aria-label={
        others.length ? `Here now: ${others.map((p) => p.name).join(', ')}` : 'Only you are here'
      }
      data-testid="presence"
    >
      {shown.map((p) => (
        <Avatar key={p.userId} userId={p.userId} name={p.name} />
      ))}
      {others.length > shown.length && (
        <span
          className="avatar avatar-more"
          title={others
            .slice(shown.length)
            .map((p) => p.name)
            .join(', ')}
        >
          +{others.length - shown.length}
        </span>
      )}
      {self && <Avatar userId={self.userId} name={self.name} you />}
    </div>
  );
}

/** The explorer's mark on a file others have open: their initials, small. */
export function FileCollaborators(props: { people: Collaborator[] | undefined }) {
  if (!props.people?.length) return null;
  const names = props.people.map((p) => p.name).join(', ');
  return (
    <span className="file-collaborators" title={`Open by ${names}`} aria-label={`open by ${names}`}>
      {props.people.slice(0, 3).map((p) => (
        <span
          key={p.userId}
          className="file-collaborator"
          style={{ background: colorFor(p.userId) }}
          aria-hidden="true"
        >
          {initials(p.name)}
        </span>
      ))}
    </span>
  );
}
