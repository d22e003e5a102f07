import { hash, verify, type Algorithm } from '@node-rs/argon2';

/** argon2id with OWASP's minimum: 19 MiB, 2 passes, 1 lane. */
const ARGON2ID = 2 as Algorithm;
const options = { algorithm: ARGON2ID, memoryCost: 19_456, timeCost: 2, parallelism: 1 };

/** Hashes a password with argon2id; the encoded hash carries its own parameters and salt. */
export function hashPassword(password: string): Promise<string> {
  return hash(password, options);
}

/** Checks a password against an encoded argon2 hash; false for a malformed hash. */
export async function verifyPassword(encoded: string, password: string): Promise<boolean> {
  try {
    return await verify(encoded, password);
  } catch {
    return false;
  }
}

/**
 * A hash of a random password, verified against when the account does not exist so that
 * "no such user" takes as long as "wrong password".
 */
export const dummyHashPromise: Promise<string> = hashPassword(crypto.randomUUID());
