import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';

/**
 * Sealed values: AES-256-GCM under a per-value key derived with HKDF-SHA256 from a master key
 * and the value's context (its table, column and row), the context also bound as additional
 * authenticated data. A sealed value copied to another row, another column or another key id
 * does not open. Text form (every part base64url):
 *
 *   vf1:aes-256-gcm:<keyId>:<nonce 12 bytes>:<tag 16 bytes>:<ciphertext>
 */

export const sealedFormat = 'vf1';
export const sealAlgorithm = 'aes-256-gcm';

const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const KEY_BYTES = 32;
const HKDF_SALT = Buffer.from('vaporform/secrets/vf1', 'utf8');
const KEY_ID = /^[a-z0-9]{1,32}$/;
const BASE64URL = /^[A-Za-z0-9_-]*$/;

/** A master key: 32 bytes and the id recorded in every value it seals. */
export interface MasterKey {
  id: string;
  key: Buffer;
}

/** Why a sealed value would not open. */
export type SealedValueProblem = 'malformed' | 'unsupported' | 'unknown_key' | 'tampered';

/** A sealed value that cannot be opened: it fails closed, never returning garbage. */
export class SealedValueError extends Error {
  constructor(
    readonly problem: SealedValueProblem,
    message: string,
  ) {
    super(message);
    this.name = 'SealedValueError';
  }
}

/** The parts of a sealed value, not yet authenticated. */
export interface SealedParts {
  algorithm: string;
  keyId: string;
  nonce: Buffer;
  tag: Buffer;
  ciphertext: Buffer;
}

/**
 * Seals `plaintext` under `master`, bound to `context` (e.g. `project_env_vars:<project>:<name>`).
 * Every call draws a fresh random 96-bit nonce, so equal plaintexts give different values.
 */
export function sealValue(master: MasterKey, plaintext: string, context: string): string {
  if (master.key.length !== KEY_BYTES) throw new Error('a master key is 32 bytes');
  if (!KEY_ID.test(master.id)) throw new Error('malformed master key id');
  const nonce = randomBytes(NONCE_BYTES);
  const cipher = createCipheriv(sealAlgorithm, rowKey(master.key, context), nonce, {
    authTagLength: TAG_BYTES,
  });
  cipher.setAAD(aad(sealAlgorithm, master.id, context));
  const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  const tag = cipher.getAuthTag();
  return [
    sealedFormat,
    sealAlgorithm,
    master.id,
    nonce.toString('base64url'),
    tag.toString('base64url'),
    ciphertext.toString('base64url'),
  ].join(':');
}

/**
 * Opens a sealed value with the key its id names.
 * @throws SealedValueError `malformed` (not a sealed value), `unsupported` (format or algorithm),
 *   `unknown_key` (`lookup` has no key with its id) or `tampered` (authentication failed: a
 *   changed bit, another row's value, or the wrong key).
 */
export function openValue(
  lookup: (keyId: string) => MasterKey | undefined,
  sealed: string,
  context: string,
): string {
  const parts = parseSealedValue(sealed);
  const master = lookup(parts.keyId);
  if (!master) {
    throw new SealedValueError(
      'unknown_key',
      `the master key ${parts.keyId} that sealed this value is not available`,
    );
  }
  const decipher = createDecipheriv(
    parts.algorithm as 'aes-256-gcm',
    rowKey(master.key, context),
    parts.nonce,
    {
      authTagLength: TAG_BYTES,
    },
  );
  decipher.setAAD(aad(parts.algorithm, parts.keyId, context));
  decipher.setAuthTag(parts.tag);
  try {
    return Buffer.concat([decipher.update(parts.ciphertext), decipher.final()]).toString('utf8');
  } catch {
    throw new SealedValueError(
      'tampered',
      'a sealed value failed authentication: it was altered, moved from another row, or sealed with another key',
    );
  }
}

/**
 * Splits a sealed value into its parts, checking their shape (not their authenticity).
 * @throws SealedValueError `malformed` or `unsupported`.
 */
export function parseSealedValue(sealed: string): SealedParts {
  const fields = typeof sealed === 'string' ? sealed.split(':') : [];
  if (fields.length !== 6) {
    throw new SealedValueError('malformed', 'not a sealed value (expected 6 fields)');
  }
  const [format, algorithm, keyId, nonce, tag, ciphertext] = fields as [
    string,
    string,
    string,
    string,
    string,
    string,
  ];
  if (format !== sealedFormat) {
    throw new SealedValueError(
      'unsupported',
      `unsupported sealed value format "${format.slice(0, 10)}"`,
    );
  }
  if (algorithm !== sealAlgorithm) {
    throw new SealedValueError('unsupported', `unsupported algorithm "${algorithm.slice(0, 20)}"`);
  }
  if (!KEY_ID.test(keyId)) throw new SealedValueError('malformed', 'malformed key id');
  if (![nonce, tag, ciphertext].every((p) => BASE64URL.test(p))) {
    throw new SealedValueError('malformed', 'a sealed value part is not base64url');
  }
  const parts = {
    algorithm,
    keyId,
    nonce: Buffer.from(nonce, 'base64url'),
    tag: Buffer.from(tag, 'base64url'),
    ciphertext: Buffer.from(ciphertext, 'base64url'),
  };
  if (parts.nonce.length !== NONCE_BYTES || parts.tag.length !== TAG_BYTES) {
    throw new SealedValueError('malformed', 'a sealed value has a nonce or tag of the wrong size');
  }
  // Canonical encodings only: re-encoding must give back the same text.
  if (
    parts.nonce.toString('base64url') !== nonce ||
    parts.tag.toString('base64url') !== tag ||
    parts.ciphertext.toString('base64url') !== ciphertext
  ) {
    throw new SealedValueError('malformed', 'a sealed value part is not canonical base64url');
  }
  return parts;
}

/** The id of the master key that sealed `sealed`, or undefined when it is not a sealed value. */
export function sealedKeyId(sealed: string): string | undefined {
  try {
    return parseSealedValue(sealed).keyId;
  } catch {
    return undefined;
  }
}

function rowKey(master: Buffer, context: string): Buffer {
  const info = Buffer.from(context, 'utf8');
  if (info.length === 0 || info.length > 1024) throw new Error('a seal context is 1 to 1024 bytes');
  return Buffer.from(hkdfSync('sha256', master, HKDF_SALT, info, KEY_BYTES));
}

function aad(algorithm: string, keyId: string, context: string): Buffer {
  return Buffer.from(`${sealedFormat}:${algorithm}:${keyId}:${context}`, 'utf8');
}
