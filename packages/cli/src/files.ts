import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { VaporformApiError, unwrap } from '@vaporform/sdk';
import type { Session } from './session.ts';

/** Names never pushed from a local folder (nor looked into). */
const IGNORED = new Set(['.vaporform', 'node_modules', '.git']);

/** What the folder last exchanged with the project: `<dir>/.vaporform/state.json`. */
interface SyncState {
  server: string;
  projectId: string;
  files: Record<string, { version: number; contentHash: string }>;
}

/** The outcome of a pull or push, for people (`summary`) and `--json`. */
export interface SyncReport {
  written: string[];
  deleted: string[];
  unchanged: number;
  conflicts: string[];
}

function statePath(dir: string): string {
  return path.join(dir, '.vaporform', 'state.json');
}

function readState(dir: string, server: string, projectId: string): SyncState {
  try {
    const state = JSON.parse(readFileSync(statePath(dir), 'utf8')) as SyncState;
    if (state.server === server && state.projectId === projectId) return state;
  } catch {
    // no state yet, or unreadable: start over
  }
  return { server, projectId, files: {} };
}

function writeState(dir: string, state: SyncState): void {
  mkdirSync(path.dirname(statePath(dir)), { recursive: true });
  writeFileSync(statePath(dir), `${JSON.stringify(state, null, 2)}\n`);
}

function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** `dir/rel` when it stays inside `dir`; a server path that escapes it is refused. */
function inside(dir: string, rel: string): string {
  const target = path.resolve(dir, rel);
  if (!target.startsWith(path.resolve(dir) + path.sep)) {
    throw new VaporformApiError(0, 'unsafe_path', `refusing a path outside the folder: ${rel}`);
  }
  return target;
}

/** Every file under `dir` as POSIX paths relative to it, ignored names skipped. */
function localFiles(dir: string, prefix = ''): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(path.join(dir, prefix), { withFileTypes: true })) {
    if (IGNORED.has(entry.name)) continue;
    const rel = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory()) out.push(...localFiles(dir, rel));
    else if (entry.isFile()) out.push(rel);
  }
  return out;
}

/**
 * Copies the project's files into `dir`: files whose bytes differ are written, files that were
 * pulled before and are gone from the project are removed, other local files are left alone.
 */
export async function pull(session: Session, projectId: string, dir: string): Promise<SyncReport> {
  mkdirSync(dir, { recursive: true });
  const state = readState(dir, session.server, projectId);
  const { files } = unwrap(
    await session.api.GET('/api/projects/{id}/files', { params: { path: { id: projectId } } }),
  );
  const report: SyncReport = { written: [], deleted: [], unchanged: 0, conflicts: [] };
  const remote = new Set<string>();
  for (const meta of files) {
    if (meta.type === 'directory') continue;
    remote.add(meta.path);
    const target = inside(dir, meta.path);
    if (existsSync(target) && sha256(readFileSync(target)) === meta.contentHash) {
      report.unchanged++;
    } else {
      const file = unwrap(
        await session.api.GET('/api/projects/{id}/files/{path}', {
          params: { path: { id: projectId, path: meta.path } },
        }),
      );
      mkdirSync(path.dirname(target), { recursive: true });
      writeFileSync(
        target,
        Buffer.from(file.content, file.encoding === 'base64' ? 'base64' : 'utf8'),
      );
      report.written.push(meta.path);
    }
    state.files[meta.path] = { version: meta.version, contentHash: meta.contentHash };
  }
  for (const known of Object.keys(state.files)) {
    if (remote.has(known)) continue;
    rmSync(inside(dir, known), { force: true });
    delete state.files[known];
    report.deleted.push(known);
  }
  writeState(dir, state);
  return report;
}

/**
 * Sends the folder's changes since the last pull or push: changed and new files are written
 * (only if the project still has the version last seen: someone else's newer change is a
 * conflict, never overwritten), files deleted locally are deleted in the project.
 */
export async function push(session: Session, projectId: string, dir: string): Promise<SyncReport> {
  if (!existsSync(dir)) {
    throw new VaporformApiError(0, 'not_found', `no such folder: ${dir}`);
  }
  const state = readState(dir, session.server, projectId);
  const report: SyncReport = { written: [], deleted: [], unchanged: 0, conflicts: [] };
  const present = new Set<string>();
  for (const rel of localFiles(dir)) {
    present.add(rel);
    const bytes = readFileSync(path.join(dir, rel));
    const hash = sha256(bytes);
    const known = state.files[rel];
    if (known?.contentHash === hash) {
      report.unchanged++;
      continue;
    }
    const text = bytes.toString('utf8');
    const isText = Buffer.from(text, 'utf8').equals(bytes);
    const result = await session.api.PUT('/api/projects/{id}/files/{path}', {
      params: { path: { id: projectId, path: rel } },
      body: {
        content: isText ? text : bytes.toString('base64'),
        encoding: isText ? 'utf-8' : 'base64',
        baseVersion: known?.version ?? 0,
      },
    });
    if (result.response.status === 409) {
      report.conflicts.push(rel);
      continue;
    }
    const { file } = unwrap(result);
    state.files[rel] = { version: file.version, contentHash: file.contentHash };
    report.written.push(rel);
  }
  for (const known of Object.keys(state.files)) {
    if (present.has(known)) continue;
    const result = await session.api.DELETE('/api/projects/{id}/files/{path}', {
      params: { path: { id: projectId, path: known } },
    });
    if (result.response.status !== 404) unwrap(result);
    delete state.files[known];
    report.deleted.push(known);
  }
  writeState(dir, state);
  return report;
}
