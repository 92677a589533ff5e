import { Client } from 'basic-ftp';
import type { AccessOptions } from 'basic-ftp';
import { DepotError } from '../../../contract';
import { toDepotError } from './errors';

/**
 * A client recycled after this long: below proftpd's TLS session cache (300 s),
 * whose expiry makes the server refuse the data connections of an older session.
 */
const MAX_AGE_MS = 240_000;
/** A connection idle this long is asked NOOP before it is lent: servers drop idle sessions (proftpd: TimeoutIdle). */
const PROBE_AFTER_IDLE_MS = 15_000;

/** One FTP control connection, lent to one operation at a time. */
export interface Lease {
  client: Client;
  /**
   * Back to the pool. `broken`: the connection's state is unknown (a transfer
   * ended without its 2xx, an abort, a timeout) and it is closed instead.
   */
  release(broken?: boolean): void;
}

interface Idle {
  client: Client;
  openedAt: number;
  idleSince: number;
}

/**
 * FTP allows one command at a time per connection, so each driver keeps up to
 * `size` connections and lends each to one operation (a store holds its
 * connection from the upload to the publish). Waiters queue in order; a
 * connection that failed is closed and a new one opened for the next lease.
 */
export class ClientPool {
  private readonly idle: Idle[] = [];
  private readonly waiters: Array<{ resolve: () => void; reject: (error: unknown) => void; signal?: AbortSignal; onAbort: () => void }> = [];
  private readonly openedAt = new WeakMap<Client, number>();
  private busy = 0;
  private closed = false;

  constructor(
    private readonly size: number,
    private readonly timeoutMs: number,
    private readonly access: () => AccessOptions,
    private readonly driverName: string,
  ) {}

  async acquire(signal?: AbortSignal): Promise<Lease> {
    if (this.closed) throw new DepotError('unavailable', `${this.driverName}: the driver is closed`);
    signal?.throwIfAborted();
    // A slot is taken here, or handed over by the lease that frees it.
    if (this.busy < this.size) this.busy += 1;
    else await this.waitForSlot(signal);
    try {
      const client = await this.takeOrOpen();
      let released = false;
      return {
        client,
        release: (broken = false) => {
          if (released) return;
          released = true;
          this.giveBack(client, broken);
        },
      };
    } catch (error) {
      this.freeSlot();
      throw error;
    }
  }

  private waitForSlot(signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const waiter = {
        resolve,
        reject,
        signal,
        onAbort: () => {
          const at = this.waiters.indexOf(waiter);
          if (at >= 0) this.waiters.splice(at, 1);
          reject(signal?.reason instanceof Error ? signal.reason : new DepotError('unavailable', 'aborted while waiting for an FTP connection'));
        },
      };
      signal?.addEventListener('abort', waiter.onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  private async takeOrOpen(): Promise<Client> {
    for (let idle = this.idle.pop(); idle; idle = this.idle.pop()) {
      if (!idle.client.closed && Date.now() - idle.openedAt < MAX_AGE_MS && (await this.answers(idle))) return idle.client;
      idle.client.close();
    }
    return this.open();
  }

  private async answers(idle: Idle): Promise<boolean> {
    if (Date.now() - idle.idleSince < PROBE_AFTER_IDLE_MS) return true;
    try {
      await idle.client.send('NOOP');
      return true;
    } catch {
      return false;
    }
  }

  private async open(): Promise<Client> {
    const client = new Client(this.timeoutMs);
    // MLSD only: its facts are exact; LIST output is ambiguous for names with spaces or arrows.
    client.availableListCommands = ['MLSD'];
    // basic-ftp arms no timeout for the TLS upgrade inside access(): bound the whole login here.
    const timer = setTimeout(() => client.close(), this.timeoutMs);
    try {
      await client.access(this.access());
      this.openedAt.set(client, Date.now());
      return client;
    } catch (error) {
      client.close();
      throw toDepotError(error, this.driverName, 'connect');
    } finally {
      clearTimeout(timer);
    }
  }

  private giveBack(client: Client, broken: boolean): void {
    if (broken || this.closed || client.closed) client.close();
    else this.idle.push({ client, openedAt: this.openedAt.get(client) ?? 0, idleSince: Date.now() });
    this.freeSlot();
  }

  private freeSlot(): void {
    const next = this.waiters.shift();
    if (!next) {
      this.busy -= 1;
      return;
    }
    next.signal?.removeEventListener('abort', next.onAbort);
    next.resolve();
  }

  close(): Promise<void> {
    this.closed = true;
    for (const { client } of this.idle.splice(0)) client.close();
    for (const waiter of this.waiters.splice(0)) waiter.reject(new DepotError('unavailable', `${this.driverName}: the driver is closed`));
    return Promise.resolve();
  }
}
