import { hash, randomFillSync } from 'node:crypto';
import type { Clock, IdSource } from '../core/clock.js';
import { installSha256 } from '../core/digest.js';

// On Node, digests (actions, approvals, the log chain) use the native SHA-256, one shot:
// `hash` skips the Hash object `createHash` builds, which costs more than hashing a log entry.
installSha256((text) => hash('sha256', text, 'hex'));

/** The real clock. Only the edges (library defaults, CLI, server) use it; the core never does. */
export const systemClock: Clock = { now: () => Date.now() };

/** Random bytes in one id: 80 bits, after 48 bits of time. */
const RANDOM_BYTES = 10;
/**
 * Random bytes for the next ids, drawn from the CSPRNG a pool at a time: a decision takes
 * two or three ids, and one system call per id (or a UUID reformatted) costs more than the
 * rest of an id. Each byte is used once.
 */
const pool = Buffer.alloc(RANDOM_BYTES * 256);
let poolAt = pool.length;
/** The last time an id was made at, and its 12 hex digits: the ids of a decision share them. */
let timeAt = -1;
let timeHex = '';

/**
 * Unguessable identifiers such as `wr_019ab3c2f1e0…`: the kind, `_`, then 32 hex digits —
 * the time in ms (12 digits) and 80 random bits, as UUIDv7 lays them out. Ids made later
 * sort after earlier ones, so a store's index of writs and decisions grows at its end
 * instead of splitting pages all over the file (on SQLite, random ids made a decision about
 * a quarter slower).
 */
export const randomIds: IdSource = {
  next(kind) {
    if (poolAt === pool.length) {
      randomFillSync(pool);
      poolAt = 0;
    }
    const random = pool.toString('hex', poolAt, poolAt + RANDOM_BYTES);
    poolAt += RANDOM_BYTES;
    const now = Date.now();
    if (now !== timeAt) {
      timeAt = now;
      timeHex = now.toString(16).padStart(12, '0');
    }
    return `${kind}_${timeHex}${random}`;
  },
};
