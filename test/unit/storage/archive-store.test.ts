import { Readable } from 'node:stream';
import { archiveKey, DepotError, newTaskId, Space } from '../../../src/contract';
import { ArchiveStore } from '../../../src/storage/archive-store';
import { silentLogger } from '../../../src/support/logging';
import { FakeDriver } from '../fake-driver';

/** A backend that cannot even be looked at: its stat fails. */
class UnreachableDriver extends FakeDriver {
  override async stat(): Promise<null> {
    throw new DepotError('unavailable', 'the backend does not answer');
  }
}

describe('ArchiveStore.store closes the source on every path', () => {
  test('a stat that fails before anything is read destroys the source (an open file or download is not left to the collector)', async () => {
    const store = new ArchiveStore(new UnreachableDriver('down', { type: 'fake' }), silentLogger());
    const taskId = newTaskId();
    const body = Readable.from([Buffer.from('never read')]);
    await expect(store.store({ key: archiveKey(new Date(), taskId, 'a.zip'), taskId, name: 'a.zip', body })).rejects.toMatchObject({ code: 'unavailable' });
    expect(body.destroyed).toBe(true);
  });
});

describe('ArchiveStore reads the capabilities drivers declare', () => {
  /** Claims no space figures, yet would give some if asked. */
  class ReportsSpaceUnasked extends FakeDriver {
    spaceCalls = 0;
    override async space(): Promise<Space> {
      this.spaceCalls++;
      return { totalBytes: 1, freeBytes: 1 };
    }
  }

  test('space: a driver without the capability is not asked; one with it is', async () => {
    const without = new ReportsSpaceUnasked('a', { type: 'fake' });
    expect(await new ArchiveStore(without, silentLogger()).space()).toEqual({});
    expect((await new ArchiveStore(without, silentLogger()).check()).space).toEqual({});
    expect(without.spaceCalls).toBe(0);
    const withSpace = new ReportsSpaceUnasked('b', { type: 'fake' });
    Object.assign(withSpace, { capabilities: { ...withSpace.capabilities, space: true } });
    expect(await new ArchiveStore(withSpace, silentLogger()).space()).toEqual({ totalBytes: 1, freeBytes: 1 });
    expect(withSpace.spaceCalls).toBe(1);
  });
});
