import { randomUUID } from 'node:crypto';
import type { Clock, IdSource } from '../core/clock.js';

/** The real clock. Only the edges (library defaults, CLI, server) use it; the core never does. */
export const systemClock: Clock = { now: () => Date.now() };

/** Random, unguessable identifiers such as `dec_0f8c…`. */
export const randomIds: IdSource = { next: (kind) => `${kind}_${randomUUID().replace(/-/g, '')}` };
