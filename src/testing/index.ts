/**
 * Test helpers for writ, behind their own import path (`writ/testing`) so that the root
 * entry never pulls in vitest or fast-check. Both are optional peer dependencies: install
 * them to use this module.
 */
export type { StoreConformanceOptions, StoreFactory } from './store-conformance.js';
export { describeStoreConformance, storeConformanceCaseNames } from './store-conformance.js';
