import { useEffect, useMemo, useState, type ReactNode } from 'react';

const imageTypes: Record<string, string> = {
  png: 'image/png',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  gif: 'image/gif',
  webp: 'image/webp',
  svg: 'image/svg+xml',
  ico: 'image/x-icon',
  bmp: 'image/bmp',
  avif: 'image/avif',
};

/** The image MIME type of a path by its extension, or null when it is not an image. */
export function imageTypeOf(path: string): string | null {
  const ext = /\.([^./]+)$/.exec(path)?.[1]?.toLowerCase();
  return (ext && imageTypes[ext]) || null;
}

/** Whether the editor area shows this file here instead of in the text editor. */
export function showsAsBinary(path: string, encoding: string): boolean {
  return encoding === 'base64' || imageTypeOf(path) !== null;
}

/** A file's bytes from its stored form (UTF-8 text, or base64). */
export function fileBlob(content: string, encoding: string, type = ''): Blob {
  if (encoding !== 'base64') return new Blob([content], { type: type || 'text/plain' });
  const raw = atob(content);
  const bytes = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
  return new Blob([bytes], { type: type || 'application/octet-stream' });
}

/** Saves `blob` as a download named `name`. */
export function saveBlob(blob: Blob, name: string): void {
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
}

/** The last segment of a path. */
export function baseName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

/** The size of a file as a person reads it. */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} bytes`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

/**
 * A file the text editor does not show: an image is previewed (with its size), anything else
 * is "binary file — Download". An SVG can still be edited as text (`editText`).
 */
export function BinaryView(props: {
  path: string;
  content: string;
  encoding: string;
  /** The text editor, for images that are text (SVG). */
  editText?: () => ReactNode;
}) {
  const type = imageTypeOf(props.path);
  const blob = useMemo(
    () => fileBlob(props.content, props.encoding, type ?? undefined),
    [props.content, props.encoding, type],
  );
  const url = useMemo(() => (type ? URL.createObjectURL(blob) : null), [blob, type]);
  useEffect(() => () => void (url && URL.revokeObjectURL(url)), [url]);
  const [asText, setAsText] = useState(false);
  const [size, setSize] = useState<{ w: number; h: number } | null>(null);
  const name = baseName(props.path);
  const download = (
    <button onClick={() => saveBlob(blob, name)} aria-label={`Download ${name}`}>
      Download
    </button>
  );
  if (asText && props.editText) return <>{props.editText()}</>;
  if (!url) {
    return (
      <div className="binary-view" data-testid="binary-file">
        <p>
          <strong>{name}</strong> is a binary file ({formatBytes(blob.size)}); it is not shown in
          the editor.
        </p>
        {download}
      </div>
    );
  }
  return (
    <div className="binary-view" data-testid="image-preview">
      <div className="binary-view-image">
        <img
          src={url}
          alt={name}
          onLoad={(e) =>
            setSize({ w: e.currentTarget.naturalWidth, h: e.currentTarget.naturalHeight })
          }
        />
      </div>
      <p className="muted small">
        {name} · {size ? `${size.w}×${size.h} · ` : ''}
        {formatBytes(blob.size)}
      </p>
      <div className="row">
        {download}
        {props.editText && props.encoding !== 'base64' && (
          <button onClick={() => setAsText(true)}>Edit as text</button>
        )}
      </div>
    </div>
  );
}
