import { ArchivingManager, FailedEvent, ProgressEvent } from '../../../src/archiving/manager';
import type { ErrorCode } from '../../../src/contract';
import { RedisServer, startRedis } from '../../helpers/redis-server';

/**
 * ArchivingManager's events are typed as BullMQ types its own: `on`, `once`,
 * `off` and `emit` take only the manager's event names, each with its payload.
 * The `@ts-expect-error` lines are the type-level test: `npm run typecheck`
 * fails when one of them compiles (a wrong name or payload let through).
 * At run time the manager is the EventEmitter it was.
 */
let redis: RedisServer;
let manager: ArchivingManager;

beforeAll(async () => {
  redis = await startRedis();
  manager = new ArchivingManager({ redisUrl: redis.url });
});

afterAll(async () => {
  await manager?.close();
  await redis?.stop();
});

afterEach(() => {
  manager.removeAllListeners();
});

test('each listener gets the payload of its event, typed', () => {
  const seen: unknown[] = [];
  manager.on('progress', (event) => seen.push(event.bytes.toFixed(0), event.totalBytes));
  manager.on('completed', (event) => seen.push(event.jobId, event.result));
  manager.on('failed', (event) => seen.push(event.error.code satisfies ErrorCode, event.error.message));
  manager.emit('progress', { jobId: 'task-a', bytes: 3, totalBytes: 10 });
  manager.emit('completed', { jobId: 'task-a', result: { size: 10 } });
  manager.emit('failed', { jobId: 'task-b', error: { code: 'not_found', message: 'gone' } });
  expect(seen).toEqual(['3', 10, 'task-a', { size: 10 }, 'not_found', 'gone']);
});

/** Compiled by `npm run typecheck`, never run: each call must be a type error, or the unused `@ts-expect-error` fails the typecheck. */
export function wrongUses(m: ArchivingManager): void {
  // @ts-expect-error -- no such event: the manager emits 'completed'
  m.on('complete', () => undefined);
  // @ts-expect-error -- a progress event carries no result
  m.once('progress', (event) => event.result);
  // @ts-expect-error -- a failed event is not a progress event
  m.on('failed', (event: ProgressEvent) => event.bytes);
  // @ts-expect-error -- emit checks the payload: bytes is missing
  m.emit('progress', { jobId: 'task-a' });
  // @ts-expect-error -- emit checks the code against the contract's
  m.emit('failed', { jobId: 'task-a', error: { code: 'broken', message: 'no such code' } });
}

test('on, once and off behave as EventEmitter, and chain', () => {
  const failures: FailedEvent[] = [];
  const onFailed = (event: FailedEvent) => failures.push(event);
  const once: ProgressEvent[] = [];
  expect(manager.on('failed', onFailed).once('progress', (event) => once.push(event))).toBe(manager);
  const failed: FailedEvent = { jobId: 'task-c', error: { code: 'integrity', message: 'sha256 differs' } };
  manager.emit('failed', failed);
  expect(manager.emit('progress', { jobId: 'task-c', bytes: 1 })).toBe(true);
  expect(manager.emit('progress', { jobId: 'task-c', bytes: 2 })).toBe(false);
  expect(manager.off('failed', onFailed)).toBe(manager);
  manager.emit('failed', failed);
  expect(failures).toEqual([failed]);
  expect(once).toEqual([{ jobId: 'task-c', bytes: 1 }]);
});
