import { setTimeout as sleep } from 'node:timers/promises';
import { openValue, sealValue, SealedValueError, type MasterKey } from './envelope.ts';
import { generateMasterKey, type KeyRing } from './keyring.ts';
import type { KeyRow, SecretsStore } from './store.ts';
import type { SealedColumn } from '../../common/sealed-column.ts';

export type { SealedColumn };

/** Progress of a rotation, after each batch. */
export interface RotationProgress {
  column: string;
  resealed: number;
  failed: number;
}

export interface RotationOptions {
  /** Values re-sealed per batch (default 100). */
  batchSize?: number;
  /** Pause between batches, to spread the load (default 0). */
  pauseMs?: number;
  onProgress?: (progress: RotationProgress) => void;
}

/** What a rotation did. */
export interface RotationReport {
  /** The key that seals new values now. */
  activeKeyId: string;
  /** True when this run continued an interrupted rotation instead of adding a key. */
  resumed: boolean;
  /** True when the new key was generated into the key file by this run. */
  generated: boolean;
  resealed: number;
  /** Values that would not open (tampered, or their key is missing): they keep their key. */
  failed: number;
  /** Keys retired now: nothing uses them any more. */
  retired: string[];
  /** Keys still retiring, with how many values still use them. */
  stillInUse: Record<string, number>;
}

/**
 * Rotates the master key: adds a new key (generated into the key file, or the first key of
 * VAPORFORM_MASTER_KEY), makes it the active one, re-seals every value in batches
 * (compare-and-set, so it is idempotent and safe to kill at any point: every value stays sealed
 * under a key the ring still holds) and retires the old keys once no value uses them. A run
 * that finds a key still retiring resumes that rotation instead of adding another key.
 * @throws Error when VAPORFORM_MASTER_KEY supplies keys but no new one.
 */
export async function rotateMasterKey(deps: {
  store: SecretsStore;
  keyring: KeyRing;
  columns: SealedColumn[];
  options?: RotationOptions;
}): Promise<RotationReport> {
  const { store, keyring, columns } = deps;
  const batchSize = Math.max(1, Math.trunc(deps.options?.batchSize ?? 100));
  const pauseMs = Math.max(0, deps.options?.pauseMs ?? 0);

  keyring.reload();
  const known = await store.listKeys();
  const retiring = known.filter((k) => k.status === 'retiring');
  let resumed = false;
  let generated = false;
  let active: MasterKey;
  if (retiring.length > 0) {
    resumed = true;
    const row = await store.activeKey();
    if (!row) throw new Error('no active master key in secret_keys');
    active = requireKey(keyring, row.id);
  } else {
    const candidate = pickNewKey(keyring, known);
    generated = candidate.generated;
    active = candidate.key;
    await store.transaction(async (tx) => {
      const current = await tx.lockActiveKey();
      if (!current) throw new Error('no active master key (is another rotation running?)');
      await tx.setKeyStatus(current.id, 'retiring');
      await tx.insertKey(active.id, 'active');
    });
  }

  let resealed = 0;
  let failed = 0;
  for (const column of columns) {
    let after: string | undefined;
    for (;;) {
      const batch = await column.stale(active.id, after, batchSize);
      if (batch.length === 0) break;
      let batchResealed = 0;
      let batchFailed = 0;
      for (const cell of batch) {
        after = cell.cursor;
        let plaintext: string;
        try {
          plaintext = openValue((id) => keyring.find(id), cell.sealed, cell.context);
        } catch (err) {
          if (!(err instanceof SealedValueError)) throw err;
          batchFailed++;
          continue;
        }
        const next = sealValue(active, plaintext, cell.context);
        // A concurrent write already sealed a newer value with the active key: keep that one.
        if (await column.replace(cell.cursor, cell.sealed, next)) batchResealed++;
      }
      resealed += batchResealed;
      failed += batchFailed;
      deps.options?.onProgress?.({
        column: column.name,
        resealed: batchResealed,
        failed: batchFailed,
      });
      if (pauseMs > 0) await sleep(pauseMs);
    }
  }

  const usage: Record<string, number> = {};
  for (const column of columns) {
    for (const [id, n] of Object.entries(await column.countByKey()))
      usage[id] = (usage[id] ?? 0) + n;
  }
  const retired: string[] = [];
  const stillInUse: Record<string, number> = {};
  for (const key of await store.listKeys()) {
    if (key.status !== 'retiring') continue;
    const n = usage[key.id] ?? 0;
    if (n === 0) {
      await store.setKeyStatus(key.id, 'retired');
      retired.push(key.id);
    } else {
      stillInUse[key.id] = n;
    }
  }
  // Retired key material leaves the key file: nothing needs it, and it should not outlive use.
  const retiredIds = (await store.listKeys())
    .filter((k) => k.status === 'retired')
    .map((k) => k.id);
  keyring.removeFromFile(retiredIds.filter((id) => id !== active.id));

  return { activeKeyId: active.id, resumed, generated, resealed, failed, retired, stillInUse };
}

function requireKey(keyring: KeyRing, id: string): MasterKey {
  const key = keyring.find(id);
  if (!key) {
    throw new Error(
      `the active master key ${id} is not available here: set VAPORFORM_MASTER_KEY to include it, or restore ${keyring.file}`,
    );
  }
  return key;
}

function pickNewKey(keyring: KeyRing, known: KeyRow[]): { key: MasterKey; generated: boolean } {
  const isKnown = (id: string) => known.some((k) => k.id === id);
  if (keyring.fromEnvironment) {
    const first = keyring.envKeys()[0]!;
    if (isKnown(first.id)) {
      throw new Error(
        `VAPORFORM_MASTER_KEY's first key (${first.id}) is already in use: put a new key first ` +
          '(`npm run vaporform -- generate-master-key` prints one), keep the current one after it, and run this again',
      );
    }
    return { key: first, generated: false };
  }
  // A key added by an earlier run that stopped before activating it.
  const pending = keyring
    .fileKeys()
    .reverse()
    .find((k) => !isKnown(k.id));
  if (pending) return { key: pending, generated: false };
  const key = generateMasterKey();
  keyring.addToFile(key);
  return { key, generated: true };
}
