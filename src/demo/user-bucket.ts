// The bucket of a user for sticky rollouts (`sticky.bucketHeader`), computed where the user id
// is known and sent in that header. Every language must agree: docs/sticky.md has the same
// function in Python and Go, and test vectors.
import { createHash } from 'node:crypto';

/** sha256 of the UTF-8 user id; its first 8 bytes as an unsigned 64-bit big-endian integer; mod buckets. */
export function userBucket(userId: string, buckets = 100): number {
  const digest = createHash('sha256').update(userId, 'utf8').digest();
  return Number(digest.readBigUInt64BE(0) % BigInt(buckets));
}
