import { readdirSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import type Docker from 'dockerode';
import { DEPLOYMENT_LABEL } from '../../../../../infra/terraform/provider-local/src/machine.ts';

/** A machine as Terraform's state (and the `machines` output) describes it. */
export interface StateMachine {
  name: string;
  id: string;
  private_ip: string;
  public_ip: string;
}

/** Processes whose working directory is `dir` or below it (terraform and its providers). */
export function processesIn(dir: string): number[] {
  const root = path.resolve(dir);
  const pids: number[] = [];
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return pids; // no procfs: nothing we can find
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const cwd = readlinkSync(`/proc/${entry}/cwd`);
      if (cwd === root || cwd.startsWith(`${root}/`)) pids.push(Number(entry));
    } catch {
      // gone, or not ours to read
    }
  }
  return pids;
}

/**
 * SIGKILLs what a stopped server's run left running in the work folder (terraform runs in a
 * process group of its own, so it outlives the server until it next writes to its closed
 * stdout) and waits, at most `timeoutMs`, until it is gone.
 * @returns how many processes were killed.
 */
export async function killProcessesIn(dir: string, timeoutMs = 5000): Promise<number> {
  const found = processesIn(dir);
  const deadline = Date.now() + timeoutMs;
  for (let left = found; left.length > 0 && Date.now() < deadline; left = processesIn(dir)) {
    for (const pid of left) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return found.length;
}

/** The `vaporform_machine` instances of a saved Terraform state. */
export function stateMachines(state: unknown): StateMachine[] {
  const resources = (state as { resources?: unknown[] } | undefined)?.resources ?? [];
  const machines: StateMachine[] = [];
  for (const resource of resources as Array<{
    mode?: string;
    type?: string;
    instances?: Array<{ attributes?: Record<string, unknown> }>;
  }>) {
    if (resource.mode !== 'managed' || resource.type !== 'vaporform_machine') continue;
    for (const instance of resource.instances ?? []) {
      const a = instance.attributes ?? {};
      if (typeof a.id !== 'string' || !a.id) continue;
      machines.push({
        name: String(a.name ?? ''),
        id: a.id,
        private_ip: String(a.private_ip ?? ''),
        public_ip: '',
      });
    }
  }
  return machines;
}

/**
 * Removes the containers labelled with the deployment that Terraform's state does not hold
 * (created by an apply that died before saving its state), then the deployment's networks
 * when no container of it is left.
 * @returns the names of the containers removed.
 */
export async function removeUnrecorded(
  docker: Docker,
  deploymentId: string,
  recordedIds: Set<string>,
): Promise<string[]> {
  const filters = JSON.stringify({ label: [`${DEPLOYMENT_LABEL}=${deploymentId}`] });
  const removed: string[] = [];
  const containers = await docker.listContainers({ all: true, filters });
  for (const c of containers) {
    if (recordedIds.has(c.Id)) continue;
    try {
      await docker.getContainer(c.Id).remove({ force: true, v: true });
    } catch (error) {
      if ((error as { statusCode?: number }).statusCode !== 404) throw error;
    }
    removed.push((c.Names[0] ?? c.Id).replace(/^\//, ''));
  }
  if (containers.length === removed.length) {
    for (const n of await docker.listNetworks({ filters })) {
      try {
        await docker.getNetwork(n.Id).remove();
      } catch (error) {
        if ((error as { statusCode?: number }).statusCode !== 404) throw error;
      }
    }
  }
  return removed;
}
