import Docker from 'dockerode';
import { UNKNOWN, type CtyValue } from './msgpack.ts';

/** Label every machine and network carries: the deployment it belongs to. */
export const DEPLOYMENT_LABEL = 'vaporform.deployment';
const MACHINE_LABEL = 'vaporform.machine';
const MANAGED_LABEL = 'vaporform.managed-by';
const MANAGED_BY = 'terraform-provider-vaporform';
const DEFAULT_MEMORY_MB = 512;
const MIB = 1024 * 1024;

/** `vaporform_machine`'s schema: attribute name → [cty type, role]. */
export const MACHINE_ATTRIBUTES: Array<{
  name: string;
  type: 'string' | 'number' | 'bool';
  role: 'required' | 'optional' | 'optional+computed' | 'computed';
  description: string;
  sensitive?: boolean;
}> = [
  { name: 'id', type: 'string', role: 'computed', description: 'Docker container id' },
  { name: 'name', type: 'string', role: 'required', description: 'container name' },
  {
    name: 'deployment_id',
    type: 'string',
    role: 'required',
    description: 'Vaporform deployment id (label vaporform.deployment)',
  },
  { name: 'image', type: 'string', role: 'required', description: 'container image' },
  {
    name: 'memory_mb',
    type: 'number',
    role: 'optional+computed',
    description: 'memory limit in MiB (default 512); changed in place',
  },
  { name: 'network', type: 'string', role: 'computed', description: "the deployment's network" },
  { name: 'private_ip', type: 'string', role: 'computed', description: 'address on that network' },
  { name: 'running', type: 'bool', role: 'computed', description: 'whether the container runs' },
  {
    name: 'bootstrap',
    type: 'string',
    role: 'optional',
    description: "the machine's main process (sh -c): installs and keeps running the agent",
  },
  {
    name: 'agent_server_url',
    type: 'string',
    role: 'optional',
    description: 'where the agent dials (VAPORFORM_SERVER_URL)',
  },
  {
    name: 'agent_socket_dir',
    type: 'string',
    role: 'optional',
    description: "host folder of the server's agent gateway socket, mounted at /run/vaporform",
  },
  {
    name: 'agent_token',
    type: 'string',
    role: 'optional',
    sensitive: true,
    description: "the machine's one-use enrollment token (VAPORFORM_ENROLLMENT_TOKEN)",
  },
];

/** The agent's home on a machine that runs one: the runtime image's uid-1000 user's home. */
const AGENT_USER = '1000:1000';
const AGENT_HOME = '/home/vaporform';

/** Attributes whose change needs a new container. */
const REPLACE_ON_CHANGE = ['name', 'deployment_id', 'image'] as const;

type State = { [key: string]: CtyValue };

/** A machine's plan: the planned state and the attributes that force a replacement. */
export interface MachinePlan {
  planned: State | null;
  requiresReplace: string[];
}

/** The network of a deployment: one per deployment, named after it. */
export function networkName(deploymentId: string): string {
  return `vf-${deploymentId}`;
}

function isStatus(error: unknown, ...codes: number[]): boolean {
  return codes.includes((error as { statusCode?: number }).statusCode ?? 0);
}

/** Creates, reads, updates and deletes machines: hardened containers on a Docker engine. */
export class Machines {
  readonly #docker: Docker;
  readonly #networks = new Map<string, Promise<string>>();

  constructor(docker: Docker = new Docker()) {
    this.#docker = docker;
  }

  /** Plans a change from prior to proposed (null prior: create; null proposed: destroy). */
  plan(prior: State | null, proposed: State | null): MachinePlan {
    if (proposed === null) return { planned: null, requiresReplace: [] };
    const memory = proposed.memory_mb ?? DEFAULT_MEMORY_MB;
    const deploymentId = String(proposed.deployment_id);
    if (prior === null) {
      return {
        planned: {
          ...proposed,
          memory_mb: memory,
          id: UNKNOWN,
          network: networkName(deploymentId),
          private_ip: UNKNOWN,
          running: true,
        },
        requiresReplace: [],
      };
    }
    const requiresReplace: string[] = REPLACE_ON_CHANGE.filter((k) => prior[k] !== proposed[k]);
    // A container stopped or cut off its network outside Terraform comes back as a new one.
    if (prior.running === false) requiresReplace.push('running');
    if (prior.private_ip === '') requiresReplace.push('private_ip');
    if (requiresReplace.length > 0) {
      return {
        planned: {
          ...proposed,
          memory_mb: memory,
          id: UNKNOWN,
          network: networkName(deploymentId),
          private_ip: UNKNOWN,
          running: true,
        },
        requiresReplace,
      };
    }
    return { planned: { ...prior, ...proposed, memory_mb: memory }, requiresReplace: [] };
  }

  /** Applies a planned change; returns the new state (null once destroyed). */
  async apply(prior: State | null, planned: State | null): Promise<State | null> {
    if (planned === null) {
      if (prior !== null) await this.#remove(String(prior.id), String(prior.network));
      return null;
    }
    if (prior === null) return this.#create(planned);
    const id = String(prior.id);
    if (prior.memory_mb !== planned.memory_mb) {
      const memory = Number(planned.memory_mb) * MIB;
      await this.#docker.getContainer(id).update({ Memory: memory, MemorySwap: memory });
    }
    const state = await this.read({ ...prior, ...planned });
    if (state === null) throw new Error(`container ${id} disappeared during the update`);
    return state;
  }

  /** Reads a machine back from the engine; null when it was removed outside Terraform. */
  async read(state: State): Promise<State | null> {
    let info: Docker.ContainerInspectInfo;
    try {
      info = await this.#docker.getContainer(String(state.id)).inspect();
    } catch (error) {
      if (isStatus(error, 404)) return null;
      throw error;
    }
    const network = String(state.network);
    return {
      ...state,
      id: info.Id,
      name: info.Name.replace(/^\//, ''),
      image: info.Config.Image,
      deployment_id: info.Config.Labels?.[DEPLOYMENT_LABEL] ?? '',
      memory_mb: Math.round((info.HostConfig.Memory ?? 0) / MIB),
      network,
      private_ip: info.NetworkSettings.Networks?.[network]?.IPAddress ?? '',
      running: info.State.Running,
    };
  }

  /** One network per deployment: Terraform creates machines in parallel in this process. */
  #ensureNetwork(deploymentId: string): Promise<string> {
    const name = networkName(deploymentId);
    const pending = this.#networks.get(name) ?? this.#createNetwork(deploymentId, name);
    this.#networks.set(name, pending);
    pending.catch(() => this.#networks.delete(name));
    return pending;
  }

  async #createNetwork(deploymentId: string, name: string): Promise<string> {
    const existing = await this.#docker.listNetworks({
      filters: JSON.stringify({ name: [name] }),
    });
    if (existing.some((n) => n.Name === name)) return name;
    await this.#docker.createNetwork({
      Name: name,
      Driver: 'bridge',
      Labels: { [DEPLOYMENT_LABEL]: deploymentId, [MANAGED_LABEL]: MANAGED_BY },
    });
    return name;
  }

  async #create(planned: State): Promise<State> {
    const deploymentId = String(planned.deployment_id);
    const network = await this.#ensureNetwork(deploymentId);
    const memory = Number(planned.memory_mb) * MIB;
    const bootstrap = typeof planned.bootstrap === 'string' ? planned.bootstrap : '';
    const socketDir = typeof planned.agent_socket_dir === 'string' ? planned.agent_socket_dir : '';
    // With an agent, the bootstrap is the main process; its home (credential, releases) is a
    // volume of the machine's own, so it outlives a restart of the container.
    const agent = bootstrap
      ? {
          Cmd: ['/bin/sh', '-c', bootstrap],
          User: AGENT_USER,
          WorkingDir: AGENT_HOME,
          Volumes: { [AGENT_HOME]: {} },
          Env: [
            `HOME=${AGENT_HOME}`,
            `VAPORFORM_SERVER_URL=${String(planned.agent_server_url ?? '')}`,
            `VAPORFORM_ENROLLMENT_TOKEN=${String(planned.agent_token ?? '')}`,
            `VAPORFORM_DEPLOYMENT_ID=${deploymentId}`,
            `VAPORFORM_MACHINE=${String(planned.name)}`,
          ],
        }
      : { Cmd: ['sleep', 'infinity'], User: '65534:65534' };
    const container = await this.#docker.createContainer({
      name: String(planned.name),
      Image: String(planned.image),
      ...agent,
      Labels: {
        [DEPLOYMENT_LABEL]: deploymentId,
        [MACHINE_LABEL]: String(planned.name),
        [MANAGED_LABEL]: MANAGED_BY,
      },
      HostConfig: {
        NetworkMode: network,
        ...(bootstrap && socketDir ? { Binds: [`${socketDir}:/run/vaporform:ro`] } : {}),
        Memory: memory,
        MemorySwap: memory,
        PidsLimit: 256,
        CapDrop: ['ALL'],
        SecurityOpt: ['no-new-privileges:true'],
        ReadonlyRootfs: true,
        Tmpfs: { '/tmp': 'rw,nosuid,nodev,mode=1777,size=67108864' },
        Init: true,
        RestartPolicy: { Name: 'unless-stopped' },
      },
    });
    await container.start();
    const state = await this.read({ ...planned, id: container.id, network });
    if (state === null) throw new Error(`container ${container.id} vanished right after its start`);
    return state;
  }

  async #remove(id: string, network: string): Promise<void> {
    try {
      await this.#docker.getContainer(id).remove({ force: true, v: true });
    } catch (error) {
      if (!isStatus(error, 404, 409)) throw error;
    }
    // The last machine of a deployment takes its network along.
    const left = await this.#docker.listContainers({
      all: true,
      filters: JSON.stringify({ network: [network] }),
    });
    if (left.length > 0) return;
    this.#networks.delete(network);
    try {
      await this.#docker.getNetwork(network).remove();
    } catch (error) {
      if (!isStatus(error, 403, 404, 409)) throw error;
    }
  }
}
