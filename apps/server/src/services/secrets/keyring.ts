import { createHmac, randomBytes } from 'node:crypto';
import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeSync,
} from 'node:fs';
import path from 'node:path';
import type { MasterKey } from './envelope.ts';

const KEY_BYTES = 32;
const FILE_HEADER = [
  '# Vaporform master keys (newest last): "<key id> <32-byte key, base64url>" per line.',
  '# Keep this file secret (mode 0600) and back it up with the database: without the key that',
  '# sealed a stored secret, that secret is lost. `npm run vaporform -- rotate-master-key` edits it.',
];

/** Where generated master keys live: `<data dir>/keys/master-keys`. */
export function masterKeyFile(dataDir: string): string {
  return path.join(dataDir, 'keys', 'master-keys');
}

/** The id recorded with every value a key seals: derived from the key, so every instance agrees. */
export function deriveKeyId(key: Buffer): string {
  return (
    'mk' + createHmac('sha256', key).update('vaporform master key id').digest('hex').slice(0, 12)
  );
}

/** A new random master key. */
export function generateMasterKey(): MasterKey {
  const key = randomBytes(KEY_BYTES);
  return { id: deriveKeyId(key), key };
}

/**
 * Parses a list of master keys (comma or whitespace separated, newest first), each 32 bytes as
 * 64 hex digits or base64/base64url.
 * @throws Error naming the position of the first malformed entry (never echoing it).
 */
export function parseMasterKeyList(text: string): MasterKey[] {
  const entries = text.split(/[\s,]+/).filter(Boolean);
  const keys: MasterKey[] = [];
  entries.forEach((entry, i) => {
    const key = decodeKey(entry);
    if (!key) {
      throw new Error(
        `entry ${i + 1} is not a 32-byte key in hex (64 digits) or base64 (generate one with \`npm run vaporform -- generate-master-key\`)`,
      );
    }
    const id = deriveKeyId(key);
    if (!keys.some((k) => k.id === id)) keys.push({ id, key });
  });
  return keys;
}

function decodeKey(entry: string): Buffer | undefined {
  if (/^[0-9a-fA-F]{64}$/.test(entry)) return Buffer.from(entry, 'hex');
  if (/^[A-Za-z0-9+/_-]{43}={0,1}$/.test(entry)) {
    const key = Buffer.from(
      entry.replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, ''),
      'base64url',
    );
    return key.length === KEY_BYTES ? key : undefined;
  }
  return undefined;
}

/**
 * The master keys this process can use: those in `VAPORFORM_MASTER_KEY` (newest first) and those
 * in the key file (newest last). Which one seals new values is decided by the database
 * (`secret_keys`), so that every instance agrees; the ring only holds material.
 */
export class KeyRing {
  readonly #file: string;
  readonly #envKeys: MasterKey[];
  #fileKeys: MasterKey[] = [];

  /**
   * @param options.envKeys the value of VAPORFORM_MASTER_KEY, if set.
   * @param options.createFile create the key file with one new key when it is absent and no
   *   env key is given (start-up does; the CLI does too).
   * @throws Error when the env value or the key file is malformed.
   */
  constructor(options: { dataDir: string; envKeys?: string; createFile?: boolean }) {
    this.#file = masterKeyFile(options.dataDir);
    try {
      this.#envKeys = options.envKeys ? parseMasterKeyList(options.envKeys) : [];
    } catch (err) {
      throw new Error(`VAPORFORM_MASTER_KEY: ${(err as Error).message}`);
    }
    if (options.createFile && this.#envKeys.length === 0 && !existsSync(this.#file)) {
      this.#createFile();
    }
    this.reload();
  }

  /** Where this ring reads (and the CLI writes) generated keys. */
  get file(): string {
    return this.#file;
  }

  /** True when VAPORFORM_MASTER_KEY supplies keys (the key file is then not written). */
  get fromEnvironment(): boolean {
    return this.#envKeys.length > 0;
  }

  /** The key to start with on a new database: the first env key, else the newest file key. */
  preferred(): MasterKey {
    const key = this.#envKeys[0] ?? this.#fileKeys.at(-1);
    if (!key) throw new Error(`no master key: set VAPORFORM_MASTER_KEY or create ${this.#file}`);
    return key;
  }

  /** The key with this id; the key file is read again once when it is not known yet. */
  find(id: string): MasterKey | undefined {
    const known = this.#lookup(id);
    if (known) return known;
    this.reload();
    return this.#lookup(id);
  }

  /** Every key id this ring holds, env keys first. */
  ids(): string[] {
    return [...this.#envKeys, ...this.#fileKeys].map((k) => k.id);
  }

  /** Keys in the key file, oldest first. */
  fileKeys(): MasterKey[] {
    return [...this.#fileKeys];
  }

  /** Keys from VAPORFORM_MASTER_KEY, newest first. */
  envKeys(): MasterKey[] {
    return [...this.#envKeys];
  }

  /**
   * Reads the key file again (another process, e.g. the rotation command, may have added a key).
   * @throws Error when the file is malformed.
   */
  reload(): void {
    if (!existsSync(this.#file)) {
      this.#fileKeys = [];
      return;
    }
    const keys: MasterKey[] = [];
    readFileSync(this.#file, 'utf8')
      .split('\n')
      .forEach((raw, i) => {
        const line = raw.trim();
        if (!line || line.startsWith('#')) return;
        const [id, encoded, extra] = line.split(/\s+/);
        const key = encoded ? decodeKey(encoded) : undefined;
        if (!id || !key || extra !== undefined || deriveKeyId(key) !== id) {
          throw new Error(`${this.#file}: line ${i + 1} is not "<key id> <key>" for that key`);
        }
        if (!keys.some((k) => k.id === id)) keys.push({ id, key });
      });
    this.#fileKeys = keys;
  }

  /** Appends a key to the key file (atomically: a crash leaves the old file or the new one). */
  addToFile(key: MasterKey): void {
    this.reload();
    if (this.#fileKeys.some((k) => k.id === key.id)) return;
    this.#writeFile([...this.#fileKeys, key]);
    this.reload();
  }

  /** Removes keys from the key file (atomically). */
  removeFromFile(ids: string[]): void {
    this.reload();
    const kept = this.#fileKeys.filter((k) => !ids.includes(k.id));
    if (kept.length === this.#fileKeys.length) return;
    this.#writeFile(kept);
    this.reload();
  }

  #lookup(id: string): MasterKey | undefined {
    return this.#envKeys.find((k) => k.id === id) ?? this.#fileKeys.find((k) => k.id === id);
  }

  #createFile(): void {
    mkdirSync(path.dirname(this.#file), { recursive: true, mode: 0o700 });
    try {
      writeDurably(this.#file, render([generateMasterKey()]), 'wx');
    } catch (err) {
      // Another process created it first: use theirs.
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }

  #writeFile(keys: MasterKey[]): void {
    mkdirSync(path.dirname(this.#file), { recursive: true, mode: 0o700 });
    const temp = `${this.#file}.${randomBytes(6).toString('hex')}.tmp`;
    try {
      writeDurably(temp, render(keys), 'wx');
      renameSync(temp, this.#file);
    } finally {
      rmSync(temp, { force: true });
    }
  }
}

function render(keys: MasterKey[]): string {
  return [...FILE_HEADER, ...keys.map((k) => `${k.id} ${k.key.toString('base64url')}`), ''].join(
    '\n',
  );
}

function writeDurably(file: string, text: string, flag: 'wx'): void {
  const fd = openSync(file, flag, 0o600);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
