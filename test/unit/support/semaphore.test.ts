import { Semaphore } from '../../../src/support/semaphore';
import { StorageAPI } from '../../../src/storage/api';
import { defaultDriverFactory } from '../../../src/storage/drivers';
import { silentLogger } from '../../../src/support/logging';

test('no more than the limit hold a slot at once, and waiters are served in order', async () => {
  const semaphore = new Semaphore(2);
  const order: string[] = [];
  const first = await semaphore.acquire();
  const second = await semaphore.acquire();
  const third = semaphore.acquire().then((release) => (order.push('third'), release));
  const fourth = semaphore.acquire().then((release) => (order.push('fourth'), release));
  await new Promise((r) => setImmediate(r));
  expect(order).toEqual([]);
  first();
  first(); // releasing twice frees one slot only
  const releaseThird = await third;
  await new Promise((r) => setImmediate(r));
  expect(order).toEqual(['third']);
  second();
  (await fourth)();
  releaseThird();
  expect(order).toEqual(['third', 'fourth']);
});

test('an aborted wait gives up its place without taking a slot', async () => {
  const semaphore = new Semaphore(1);
  const held = await semaphore.acquire();
  const controller = new AbortController();
  const waiting = semaphore.acquire(controller.signal);
  controller.abort(new Error('stop'));
  await expect(waiting).rejects.toThrow('stop');
  held();
  const next = await Promise.race([semaphore.acquire(), new Promise<null>((r) => setTimeout(() => r(null), 1000))]);
  expect(next).not.toBeNull();
});

test("StorageAPI.transferSlot applies a driver's maxConcurrent, per driver", async () => {
  const storage = new StorageAPI(
    {
      defaultDriver: 'a',
      drivers: { a: { type: 'filesystem', maxConcurrent: 1 }, b: { type: 'filesystem' } },
    },
    defaultDriverFactory(),
    silentLogger(),
  );
  const held = await storage.transferSlot('a');
  let second = false;
  const waiting = storage.transferSlot('a').then((release) => ((second = true), release));
  // Unlimited driver b is not held up by a.
  const other = await Promise.all([storage.transferSlot('b'), storage.transferSlot('b')]);
  await new Promise((r) => setImmediate(r));
  expect(second).toBe(false);
  held();
  (await waiting)();
  expect(second).toBe(true);
  other.forEach((release) => release());
});
