/** archive-depot as a library: the producer API and the contract's types. */
export { ArchivingManager, failureFromReason } from './archiving/manager';
export type {
  ArchivingManagerListener,
  CompletedEvent,
  FailedEvent,
  FindQuery,
  ManagerOptions,
  ProgressEvent,
  StoreOptions,
  TaskHandle,
} from './archiving/manager';
export type { Catalog, CatalogEntry, AuditEntry, Actor, AuditOperation, VerifyStatus } from './catalog/catalog';
export type { ListedArchive } from './catalog/views';
export { openCatalog } from './catalog/open';
export * from './contract';
export { loadConfig } from './config/load';
export type { Config } from './config/load';
export { StorageAPI } from './storage/api';
export { StorageDriverFactory } from './storage/factory';
export type { DriverDefinition } from './storage/factory';
export type { StorageDriver, ArchiveBody, PublishOutcome, DriverCapabilities, ProbeReport, ListOptions } from './storage/driver';
export { ArchiveStore } from './storage/archive-store';
export { defaultDriverFactory } from './storage/drivers';
