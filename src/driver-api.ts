/**
 * archive-depot/driver-api: what a driver plugin builds on (docs/PLUGINS.md).
 * The types of the driver interface and its definition, the contract's errors,
 * and the helpers depot's own drivers use to keep manifests and run the
 * connection check, so that a plugin's archives look like theirs.
 */
export { z } from 'zod';
export type { DriverDefinition } from './storage/factory';
export type { StorageDriver, ArchiveBody, FileBody, LocalFile, PublishOutcome, DriverCapabilities, ProbeReport, ListOptions } from './storage/driver';
export { commonDriverSettings, DEFAULT_DRIVER_TIMEOUT_MS } from './storage/driver-settings';
export { DepotError, isDepotError, ERROR_CODES, isErrorCode, MANIFEST_SUFFIX, toArchiveKey } from './contract';
export type { ArchiveKey, ErrorCode, Manifest, Metadata, Space, WriteOnce } from './contract';
export { foreignObject, manifestDifference, parseManifest, serializeManifest, sidecarName } from './storage/manifest';
export { probeName, runProbe } from './storage/probe';
export type { ProbeSteps, ProbeTimings } from './storage/probe';
export type { Logger } from './support/logging';
