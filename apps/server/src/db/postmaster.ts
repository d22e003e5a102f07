import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readlinkSync, realpathSync, rmSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from '../common/logger.ts';

/** The first line of `<data dir>/postmaster.pid`: the pid of the postmaster holding the dir. */
export function postmasterPid(dataDir: string): number | undefined {
  let text: string;
  try {
    text = readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8');
  } catch {
    return undefined;
  }
  const pid = Number(text.split('\n')[0]);
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

/** True while `pid` names a running process (ours or another user's); a zombie has exited. */
export function isAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false; // 0 and -n would mean process groups
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    // /proc/<pid>/stat: "pid (comm) state …"; an orphan's exit may wait for a slow reaper.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true; // no /proc: kill(0) said it exists
  }
}

/**
 * What `pid` is, as far as a postmaster goes: whether its program is `postgres`, its data
 * directory (a postmaster's working directory is its data directory; `-D` on its command line
 * where /proc is missing) and its parent. `undefined` when the process cannot be inspected.
 */
function inspect(
  pid: number,
): { program: string; dataDir: string | undefined; ppid: number } | undefined {
  if (existsSync('/proc/self/cwd')) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      return {
        program: path.basename(readlinkSync(`/proc/${pid}/exe`).replace(/ \(deleted\)$/, '')),
        dataDir: readlinkSync(`/proc/${pid}/cwd`).replace(/ \(deleted\)$/, ''),
        ppid: Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]),
      };
    } catch {
      return undefined;
    }
  }
  try {
    const line = execFileSync('ps', ['-o', 'ppid=,args=', '-p', String(pid)])
      .toString()
      .trim();
    const [, ppid = '0', args = ''] = /^(\d+)\s+(.*)$/.exec(line) ?? [];
    const dir = / -D (\S+)/.exec(args)?.[1];
    return {
      program: path.basename(args.split(' ')[0] ?? ''),
      dataDir: dir && path.resolve(dir),
      ppid: Number(ppid),
    };
  } catch {
    return undefined;
  }
}

function sameDir(a: string, b: string): boolean {
  try {
    return realpathSync(a) === realpathSync(b);
  } catch {
    return false;
  }
}

/**
 * Before starting our postmaster on `dataDir`: a postmaster of this very data dir left running
 * by a server that was killed (SIGKILL leaves its child behind) is stopped cleanly (fast
 * shutdown, SIGINT) so that ours can start, unless a live server is still its parent; a lock
 * file naming a process that is not a
 * postmaster of this dir (its pid was reused) is removed as stale. A postgres of any other data
 * dir is never signalled.
 * @throws when the data dir's server still has its own (live) parent, or the orphan does not
 * stop within `timeoutMs`.
 */
export async function takeOverOrphan(
  dataDir: string,
  log: Logger,
  timeoutMs = 30_000,
): Promise<void> {
  const pid = postmasterPid(dataDir);
  if (pid === undefined || pid === process.pid || !isAlive(pid)) return; // postgres handles stale files
  const found = inspect(pid);
  if (!found) return; // cannot tell: postgres itself refuses to start and says why
  if (found.program !== 'postgres' || !found.dataDir || !sameDir(found.dataDir, dataDir)) {
    // A live postmaster is a postgres whose working directory is its data dir: this is not one.
    log.warn({ pid, dataDir }, 'removing a stale postmaster.pid: its pid is another process now');
    rmSync(path.join(dataDir, 'postmaster.pid'), { force: true });
    return;
  }
  // An orphan was handed to init (or a subreaper); a server whose parent is a live Node process
  // belongs to a server that is still running on this data dir: that one is not ours to stop.
  const parent = found.ppid > 1 ? inspect(found.ppid) : undefined;
  if (parent && (found.ppid === process.pid || /^(node|bun)/.test(parent.program))) {
    throw new Error(
      `${dataDir} is in use by another running server (pid ${found.ppid}, parent of PostgreSQL pid ${pid}); stop it first or give this one its own VAPORFORM_DATA_DIR`,
    );
  }
  log.warn(
    { pid, dataDir },
    'an embedded PostgreSQL left running by a previous server holds the data dir: stopping it',
  );
  process.kill(pid, 'SIGINT');
  const deadline = Date.now() + timeoutMs;
  while (isAlive(pid)) {
    if (Date.now() > deadline) {
      throw new Error(
        `the PostgreSQL server left running on ${dataDir} (pid ${pid}) did not stop within ${timeoutMs / 1000} s`,
      );
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  log.info({ pid }, 'the previous embedded PostgreSQL stopped');
}
