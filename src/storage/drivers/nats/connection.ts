import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { jetstream, jetstreamManager, JetStreamClient, JetStreamManager, StreamConfig, StreamInfo } from '@nats-io/jetstream';
import { DepotError } from '../../../contract';
import { ignoreFailure } from '../../../support/ignore';
import type { Logger } from '../../../support/logging';
import { DEFAULT_DRIVER_TIMEOUT_MS } from '../../driver-settings';
import { connect, credsAuthenticator, NatsConnection } from './client';
import { apiErrorCode, isNoResponders, isStreamNotFound, isTransient, JS, toDepotError } from './errors';
import { chunkSubjects, metaSubjects, streamName } from './layout';
import type { NatsSettings } from './types';

/** How long a quick look inside another call may take. */
const QUICK_LOOK_MS = 2000;
/** Bytes a chunk message leaves for its headers (Nats-Msg-Id) under the server's max_payload. */
const HEADER_ROOM = 4 * 1024;

/** An open connection with its JetStream handles and the bucket's stream, as it was when opened. */
export interface Session {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  /** The same, with a short timeout: for a quick look (does the stream still exist?) inside another call's time. */
  quick: JetStreamManager;
  stream: string;
  /** Bytes per chunk: maxChunkBytes, within what the server and the stream accept. */
  chunkBytes: number;
  /** The stream answers direct gets (any replica answers a read). */
  direct: boolean;
}

/**
 * The driver's one connection, made on first use and made again after the
 * client gave up on it (a refused reconnect). While the servers are away the
 * client reconnects by itself, forever; requests meanwhile wait for their own
 * timeout (timeoutMs), so every call is bounded and reports `unavailable`.
 * The bucket is opened with the connection: created when missing, and
 * checked when present (an object store whose stream could drop archives by
 * itself is refused).
 */
export class NatsSession {
  private current?: Promise<Session>;
  private closed = false;
  readonly timeoutMs: number;

  constructor(
    private readonly driver: string,
    private readonly settings: NatsSettings,
    private readonly logger: Logger,
  ) {
    this.timeoutMs = settings.timeoutMs ?? DEFAULT_DRIVER_TIMEOUT_MS;
  }

  get(): Promise<Session> {
    if (this.closed) return Promise.reject(new DepotError('unavailable', `${this.driver}: the driver is closed`));
    if (!this.current) {
      const opening: Promise<Session> = this.open().then((session) => {
        this.watch(session, opening);
        return session;
      });
      this.current = opening;
      // A failed open is not kept: the next call tries again.
      opening.catch(() => {
        if (this.current === opening) this.current = undefined;
      });
    }
    return this.current;
  }

  private async open(): Promise<Session> {
    const what = `${this.driver}: connect to ${this.settings.servers.join(', ')}`;
    let nc: NatsConnection;
    try {
      nc = await connect({
        servers: this.settings.servers,
        name: `depot:${this.driver}`,
        timeout: this.timeoutMs,
        reconnect: true,
        maxReconnectAttempts: -1,
        reconnectTimeWait: 500,
        // A server that stops answering (no FIN: a host or network gone) is noticed within about two pings.
        pingInterval: Math.min(this.timeoutMs, 20_000),
        maxPingOut: 2,
        ...(this.settings.user !== undefined ? { user: this.settings.user, pass: this.settings.password } : {}),
        ...(this.settings.token !== undefined ? { token: this.settings.token } : {}),
        ...(this.settings.credsFile !== undefined ? { authenticator: credsAuthenticator(await this.readCreds(this.settings.credsFile)) } : {}),
        ...(this.settings.tls ? { tls: { ...this.settings.tls } } : {}),
      });
    } catch (error) {
      throw toDepotError(error, what);
    }
    try {
      const js = jetstream(nc, { timeout: this.timeoutMs });
      const jsm = await jetstreamManager(nc, { timeout: this.timeoutMs }).catch((error: unknown) => {
        // Nobody answered the JetStream API, and the server said on connecting that it runs none.
        if (isNoResponders(error) && nc.info?.jetstream !== true) {
          throw new DepotError('misconfigured', `${what}: JetStream is not enabled on the NATS server (nats-server -js, or jetstream {} in its config)`);
        }
        throw error;
      });
      const quick = await jetstreamManager(nc, { timeout: Math.min(this.timeoutMs, QUICK_LOOK_MS), checkAPI: false });
      const info = await this.openBucket(jsm, quick);
      return { nc, js, jsm, quick, stream: info.config.name, chunkBytes: this.chunkBytes(nc, info.config), direct: info.config.allow_direct === true };
    } catch (error) {
      await ignoreFailure(nc.close(), 'the connection is given up because the bucket could not be opened; that failure is reported');
      throw toDepotError(error, `${this.driver}: open bucket ${this.settings.bucket}`);
    }
  }

  private async readCreds(file: string): Promise<Uint8Array> {
    try {
      return await readFile(file);
    } catch (error) {
      throw new DepotError('misconfigured', `${this.driver}: cannot read credsFile ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
    }
  }

  /** Logs what the client does with the connection, and forgets it once the client gave up on it. */
  private watch(session: Session, opened: Promise<Session>): void {
    const { nc } = session;
    void (async () => {
      for await (const status of nc.status()) {
        if (status.type === 'disconnect') this.logger.warn(`disconnected from NATS server ${status.server}`, { driver: this.driver });
        else if (status.type === 'reconnect') this.logger.info(`reconnected to NATS server ${status.server}`, { driver: this.driver });
        else if (status.type === 'error') this.logger.warn(`NATS connection: ${toDepotError(status.error, this.driver).message}`, { driver: this.driver });
      }
    })();
    void nc.closed().then((error) => {
      if (error && !this.closed) this.logger.warn(`NATS connection closed: ${toDepotError(error, this.driver).message}`, { driver: this.driver });
      if (this.current === opened) this.current = undefined;
    });
  }

  /**
   * The bucket's stream: created when missing (as the object store's clients
   * create it, with `replicas` and `storage`), else checked. A stream that
   * expires or discards old messages would lose archives by itself; one that
   * is sealed cannot take any: either is refused until an operator fixes it.
   */
  private async openBucket(jsm: JetStreamManager, quick: JetStreamManager): Promise<StreamInfo> {
    const name = streamName(this.settings.bucket);
    let info: StreamInfo;
    try {
      info = await jsm.streams.info(name);
    } catch (error) {
      if (!isStreamNotFound(error)) throw error;
      info = await this.createBucket(quick, name);
    }
    const problem = bucketProblem(info.config, this.settings.bucket);
    if (problem) throw new DepotError('misconfigured', `${this.driver}: the object store ${this.settings.bucket} ${problem}; an operator must change it`);
    return info;
  }

  /**
   * Creates the bucket's stream as the object store's clients do. Workers
   * that start together create it together: identical creates are fine, but
   * on a cluster (nats-server 2.9) one of them may go unanswered although the
   * stream was made (measured: one in twelve). So the create is given a short
   * timeout, and a create that fails is followed by looks at the stream until
   * it is there or timeoutMs has passed.
   */
  private async createBucket(quick: JetStreamManager, name: string): Promise<StreamInfo> {
    const until = Date.now() + this.timeoutMs;
    try {
      const info = await quick.streams.add({
        name,
        subjects: [chunkSubjects(this.settings.bucket), metaSubjects(this.settings.bucket)],
        storage: this.settings.storage === 'memory' ? 'memory' : 'file',
        num_replicas: this.settings.replicas,
        discard: 'new',
        max_age: 0,
        allow_rollup_hdrs: true,
        allow_direct: true,
        description: 'depot archives (object store)',
      });
      this.logger.info(`created the object store ${this.settings.bucket} (stream ${name}, ${this.settings.replicas} replica(s), ${this.settings.storage})`, {
        driver: this.driver,
      });
      return info;
    } catch (error) {
      // Another worker's create (10058 when its config differs, or no answer at all): the stream may be there now.
      if (!isTransient(error) && apiErrorCode(error) !== JS.STREAM_NAME_IN_USE) throw error;
      for (let attempt = 1; ; attempt++) {
        try {
          return await quick.streams.info(name);
        } catch (lookError) {
          if (Date.now() >= until || !(isStreamNotFound(lookError) || isTransient(lookError))) throw isStreamNotFound(lookError) ? error : lookError;
          await sleep(Math.min(1000, 100 * attempt));
        }
      }
    }
  }

  private chunkBytes(nc: NatsConnection, config: StreamConfig): number {
    const limits = [this.settings.maxChunkBytes, (nc.info?.max_payload ?? 1024 * 1024) - HEADER_ROOM];
    if (config.max_msg_size && config.max_msg_size > 0) limits.push(config.max_msg_size - HEADER_ROOM);
    const bytes = Math.min(...limits);
    if (bytes < 1024) {
      throw new DepotError('misconfigured', `${this.driver}: the server's max_payload or the stream's max_msg_size leaves no room for chunks (${bytes} bytes)`);
    }
    return bytes;
  }

  async close(): Promise<void> {
    this.closed = true;
    const current = this.current;
    this.current = undefined;
    const session = await current?.catch(() => undefined);
    if (session) await ignoreFailure(session.nc.close(), 'closing: a connection that fails to close cleanly is gone all the same');
  }
}

/** Why a stream cannot hold depot's archives, or null. */
export function bucketProblem(config: StreamConfig, bucket: string): string | null {
  const subjects = config.subjects ?? [];
  if (!subjects.includes(chunkSubjects(bucket)) || !subjects.includes(metaSubjects(bucket))) {
    return `is not an object store (its stream does not take ${chunkSubjects(bucket)} and ${metaSubjects(bucket)})`;
  }
  if (config.sealed) return 'is sealed: it takes no new objects';
  if (config.max_age && config.max_age > 0) return 'has a maximum age (ttl): its archives would expire by themselves';
  if (config.max_msgs_per_subject && config.max_msgs_per_subject > 0) return 'limits messages per subject: objects of several chunks would be cut';
  if (config.discard !== 'new') return "discards old messages when full (discard: old): archives would be lost to new ones; use discard 'new'";
  if (config.mirror) return 'is a mirror: it takes no writes';
  return null;
}
