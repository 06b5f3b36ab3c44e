import { createHash, randomUUID } from 'node:crypto';
import type { Clock, IdSource } from '../core/clock.js';
import { installSha256 } from '../core/digest.js';

// On Node, digests (actions, approvals, the log chain) use the native SHA-256.
installSha256((text) => createHash('sha256').update(text, 'utf8').digest('hex'));

/** The real clock. Only the edges (library defaults, CLI, server) use it; the core never does. */
export const systemClock: Clock = { now: () => Date.now() };

/** Random, unguessable identifiers such as `dec_0f8c…`. */
export const randomIds: IdSource = { next: (kind) => `${kind}_${randomUUID().replace(/-/g, '')}` };
