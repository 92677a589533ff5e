import type { TLSSocket } from 'node:tls';
import { Readable, Transform, Writable } from 'node:stream';
import type { Client } from 'basic-ftp';
import { DepotError } from '../../../contract';
import { FileChunks } from '../../file-chunks';
import { pipeInto, STREAM_CHUNK } from '../../hashing-stream';

/*
 * Every transfer of the FTP driver goes through here: uploads through
 * `guardedUpload` (a local source file through `guardedFileUpload`), downloads (manifests, probes and archives) through
 * `guardedDownload`, each under a Watchdog.
 */

/**
 * An empty upload over TLS 1.3 that ends the data connection at once makes
 * proftpd fail the connection (`425 Unable to build data connection`): it is
 * still completing its side of the handshake. Holding the end this long lets
 * it finish (10 ms was enough here; 425 is retried once, longer, anyway).
 */
export const EMPTY_END_DELAY_MS = 50;

/**
 * Closes a client when its transfer made no progress for `ms`. basic-ftp has a
 * timeout of its own, but it misses a transfer whose data connection is open
 * while the server has already refused it; a closed client makes the
 * transfer reject at once.
 */
class Watchdog {
  private timer?: NodeJS.Timeout;
  fired = false;

  constructor(
    private readonly client: Client,
    private readonly ms: number,
  ) {
    this.touch();
  }

  touch(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.fired = true;
      this.client.close();
    }, this.ms);
  }

  /** While the reader applies backpressure, waiting is not a stall. */
  pause(): void {
    clearTimeout(this.timer);
  }

  stop(): void {
    clearTimeout(this.timer);
  }

  /** The error to report instead of basic-ftp's "User closed client during task". */
  error(driver: string, action: string): DepotError {
    return new DepotError('unavailable', `${driver}: ${action}: no progress for ${this.ms} ms`);
  }
}

/**
 * Uploads `source` to `remote` under a watchdog, holding the end of an empty
 * upload on a TLS 1.3 data connection for a moment (see EMPTY_END_DELAY_MS).
 * A source error reaches basic-ftp unchanged (`integrity` stays `integrity`).
 */
export async function guardedUpload(
  client: Client,
  source: Readable,
  remote: string,
  timeoutMs: number,
  driver: string,
  emptyEndDelayMs = EMPTY_END_DELAY_MS,
): Promise<{ bytes: number }> {
  const dog = new Watchdog(client, timeoutMs);
  let bytes = 0;
  // flush() runs as soon as the source ends, often before basic-ftp has a data connection:
  // an empty upload's end waits for basic-ftp's first read, which comes once the connection is up.
  let endWhenRead: (() => void) | undefined;
  let readStarted = false;
  const endEmpty = (end: () => void) => {
    const socket = client.ftp.dataSocket as TLSSocket | undefined;
    if (socket?.getProtocol?.() === 'TLSv1.3') setTimeout(end, emptyEndDelayMs);
    else end();
  };
  const relay = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      bytes += chunk.length;
      dog.touch();
      done(null, chunk);
    },
    flush(done) {
      dog.touch();
      if (bytes > 0) return done();
      // basic-ftp is reading already (the source ended after the connection was up): end now.
      if (readStarted) return endEmpty(done);
      endWhenRead = done;
    },
  });
  const read = relay._read.bind(relay);
  relay._read = (size: number) => {
    readStarted = true;
    const end = endWhenRead;
    if (end) {
      endWhenRead = undefined;
      endEmpty(end);
    }
    read(size);
  };
  try {
    await client.uploadFrom(pipeInto(source, relay), remote);
    return { bytes };
  } catch (error) {
    throw dog.fired ? dog.error(driver, `upload of ${remote}`) : error;
  } finally {
    dog.stop();
  }
}

/**
 * Uploads a local file to `remote` under a watchdog, read through two reused
 * buffers (FileChunks) and written to the data connection by this function
 * itself: chunk N+1 is read and hashed while chunk N is written, and a
 * buffer is read into again only after the socket's callback for its last
 * write (TLS has encrypted it by then). A stream of the file would hand
 * basic-ftp a fresh 1 MiB buffer per read, left to the collector — in the
 * worker a full collection every few tens of MiB (docs/BENCHMARKS.md, 7b).
 * basic-ftp gets a source that sends nothing and ends after the last write,
 * so that it ends the data connection and waits for the server's reply as
 * usual. sha256 and size are of exactly the bytes sent.
 */
export async function guardedFileUpload(
  client: Client,
  file: string,
  remote: string,
  options: { timeoutMs: number; driver: string; signal: AbortSignal; onBytes?: (bytes: number) => void },
): Promise<{ sha256: string; size: number }> {
  const dog = new Watchdog(client, options.timeoutMs);
  const reader = new FileChunks(file, options.signal, options.onBytes, 2);
  const send = async (): Promise<void> => {
    const socket = client.ftp.dataSocket;
    if (!socket) throw new Error('no data connection for the upload');
    let written: Promise<void> = Promise.resolve();
    for await (const chunk of reader.chunks()) {
      if (source.destroyed) break;
      // The other buffer's write is done before this one is written (and before the other is read into next).
      await written;
      dog.touch();
      written = new Promise((resolve, reject) => socket.write(chunk, (error) => (error ? reject(error) : resolve())));
      // Not left unhandled while the next chunk is read: awaited above on the next turn, or below.
      written.catch(() => undefined);
    }
    await written;
    dog.touch();
  };
  let started = false;
  const source = new Readable({
    // Called once basic-ftp has connected the data socket and piped this into it.
    read() {
      if (started) return;
      started = true;
      send().then(
        () => source.push(null),
        (error: unknown) => source.destroy(error instanceof Error ? error : new Error(String(error))),
      );
    },
  });
  // An abort ends the upload the only way basic-ftp allows: the source fails.
  const onAbort = () => source.destroy(new DepotError('unavailable', 'store aborted'));
  options.signal.addEventListener('abort', onAbort, { once: true });
  try {
    await client.uploadFrom(source, remote);
    return reader.digest();
  } catch (error) {
    throw dog.fired ? dog.error(options.driver, `upload of ${remote}`) : error;
  } finally {
    options.signal.removeEventListener('abort', onAbort);
    dog.stop();
    await reader.close();
  }
}

/**
 * Downloads `remote` under a watchdog. `take` gets each chunk and calls back
 * once it has taken it: the wait for a reader that applies backpressure is
 * not a stall. A stall fails the download with `unavailable` naming `action`;
 * any other failure (basic-ftp's, or one `take` calls back with) is thrown as
 * it is.
 */
export async function guardedDownload(
  client: Client,
  remote: string,
  take: (chunk: Buffer, done: (error?: Error) => void) => void,
  timeoutMs: number,
  driver: string,
  action = `download of ${remote}`,
): Promise<void> {
  const dog = new Watchdog(client, timeoutMs);
  const sink = new Writable({
    highWaterMark: STREAM_CHUNK,
    write(chunk: Buffer, _encoding, done) {
      dog.pause();
      take(chunk, (error) => {
        dog.touch();
        done(error);
      });
    },
  });
  try {
    await client.downloadTo(sink, remote);
  } catch (error) {
    throw dog.fired ? dog.error(driver, action) : error;
  } finally {
    dog.stop();
  }
}
