export * from './error-codes';
export * from './depot-error';
export * from './archive-name';
export * from './archive-key';
export * from './task-id';
export * from './tasks';
export * from './results';
export * from './field-issues';
