import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';

/** What `vaporform login` keeps for one server. */
export interface ServerCredentials {
  token: string;
  refreshToken: string;
  /** Epoch milliseconds when `token` expires. */
  expiresAt: number;
  email: string;
  userId: string;
}

interface CredentialsFile {
  servers: Record<string, ServerCredentials>;
}

/** `$XDG_CONFIG_HOME/vaporform` (default `~/.config/vaporform`). */
export function configDir(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CONFIG_HOME || path.join(homedir(), '.config');
  return path.join(base, 'vaporform');
}

/** The credentials file, one entry per server origin; created 0600 in a 0700 directory. */
export class CredentialStore {
  readonly file: string;

  constructor(dir = configDir()) {
    this.file = path.join(dir, 'credentials.json');
  }

  /** The credentials for `server` (an origin), if logged in. */
  get(server: string): ServerCredentials | undefined {
    return this.read().servers[server];
  }

  /** Saves (or with undefined, forgets) the credentials for `server`. */
  set(server: string, value: ServerCredentials | undefined): void {
    const data = this.read();
    if (value) data.servers[server] = value;
    else delete data.servers[server];
    const dir = path.dirname(this.file);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    // Written beside and renamed: a crash never leaves half a file; the mode is set before the
    // secret is in it.
    const temp = `${this.file}.${process.pid}.tmp`;
    writeFileSync(temp, `${JSON.stringify(data, null, 2)}\n`, { mode: 0o600 });
    chmodSync(temp, 0o600);
    renameSync(temp, this.file);
  }

  private read(): CredentialsFile {
    if (!existsSync(this.file)) return { servers: {} };
    try {
      const parsed = JSON.parse(readFileSync(this.file, 'utf8')) as Partial<CredentialsFile>;
      return { servers: parsed.servers ?? {} };
    } catch {
      return { servers: {} };
    }
  }
}
