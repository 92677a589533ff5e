/** archive-depot as a library: the producer API and the contract's types. */
export { ArchivingManager, failureFromReason } from './archiving/manager';
export type { ArchivingManagerListener, CompletedEvent, FailedEvent, ManagerOptions, ProgressEvent, StoreOptions, TaskHandle } from './archiving/manager';
export * from './contract';
export { loadConfig } from './config/load';
export type { Config } from './config/load';
export { StorageAPI } from './storage/api';
export { StorageDriverFactory } from './storage/factory';
export type { DriverDefinition } from './storage/factory';
export type { StorageDriver, ArchiveBody, PublishOutcome, DriverCapabilities, ProbeReport } from './storage/driver';
export { ArchiveStore } from './storage/archive-store';
export { defaultDriverFactory } from './storage/drivers';
