import { useMemo, useState } from 'react';

/** A command of the palette. */
export interface Command {
  id: string;
  label: string;
  keys?: string;
  run(): void;
}

/** Scores `text` against a fuzzy `query` (characters in order); -1 when it does not match. */
export function fuzzyScore(query: string, text: string): number {
  const q = query.toLowerCase();
  const t = text.toLowerCase();
  if (!q) return 0;
  let score = 0;
  let ti = 0;
  let last = -1;
  for (const ch of q) {
    const found = t.indexOf(ch, ti);
    if (found < 0) return -1;
    score += found === last + 1 ? 3 : 1;
    if (found === 0 || '/._- '.includes(t[found - 1] ?? '')) score += 2;
    last = found;
    ti = found + 1;
  }
  // Prefer matches in the file name and shorter paths.
  const name = t.slice(t.lastIndexOf('/') + 1);
  if (name.includes(q)) score += 10;
  return score - t.length / 100;
}

/** Quick open (files, Ctrl+P) and the command palette (Ctrl+Shift+P), VS Code style. */
export function CommandPalette(props: {
  mode: 'files' | 'commands';
  files: string[];
  commands: Command[];
  onOpenFile(path: string): void;
  onClose(): void;
}) {
  const [q, setQ] = useState(props.mode === 'commands' ? '>' : '');
  const [index, setIndex] = useState(0);
  const commandMode = q.startsWith('>');
  const query = commandMode ? q.slice(1).trim() : q.trim();

  const items = useMemo(() => {
    const source = commandMode
      ? props.commands.map((c) => ({ key: c.id, label: c.label, hint: c.keys, run: c.run }))
      : props.files.map((f) => ({
          key: f,
          label: f,
          hint: undefined,
          run: () => props.onOpenFile(f),
        }));
    return source
      .map((i) => ({ ...i, score: fuzzyScore(query, i.label) }))
      .filter((i) => i.score >= 0)
      .sort((a, b) => b.score - a.score)
      .slice(0, 50);
  }, [commandMode, props, query]);

  function choose(i: number) {
    const item = items[i];
    props.onClose();
    item?.run();
  }

  return (
    <div className="palette-backdrop" onMouseDown={props.onClose} role="presentation">
      <div
        className="palette"
        role="dialog"
        aria-modal="true"
        aria-label={commandMode ? 'Command palette' : 'Go to file'}
        onMouseDown={(e) => e.stopPropagation()}
      >
        <input
          autoFocus
          role="combobox"
          aria-expanded="true"
          aria-controls="palette-list"
          aria-activedescendant={items[index] ? `palette-${index}` : undefined}
          aria-label={commandMode ? 'Type a command' : 'Type a file name'}
          placeholder={commandMode ? 'Type a command' : 'Go to file (type > for commands)'}
          value={q}
          onChange={(e) => {
            setQ(e.target.value);
            setIndex(0);
          }}
          onKeyDown={(e) => {
            if (e.key === 'ArrowDown') {
              e.preventDefault();
              setIndex((i) => Math.min(items.length - 1, i + 1));
            } else if (e.key === 'ArrowUp') {
              e.preventDefault();
              setIndex((i) => Math.max(0, i - 1));
            } else if (e.key === 'Enter') {
              e.preventDefault();
              choose(index);
            } else if (e.key === 'Escape') {
              e.preventDefault();
              props.onClose();
            }
          }}
        />
        <ul id="palette-list" role="listbox">
          {items.map((item, i) => (
            <li
              key={item.key}
              id={`palette-${i}`}
              role="option"
              aria-selected={i === index}
              className={i === index ? 'selected' : ''}
              onMouseEnter={() => setIndex(i)}
              onClick={() => choose(i)}
            >
              <span>{item.label}</span>
              {item.hint && <kbd>{item.hint}</kbd>}
            </li>
          ))}
          {items.length === 0 && <li className="muted">No match</li>}
        </ul>
      </div>
    </div>
  );
}
