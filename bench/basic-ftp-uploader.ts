/**
 * The FTP peer of depot for large archives: what an operator would write without
 * it — basic-ftp's `uploadFrom(fs.createReadStream(file), remotePath)` over
 * explicit FTPS, verifying the server's certificate against a CA file. No
 * hashing, no staging name, no SIZE check, no manifest.
 *
 * Started once per measurement (like the depot worker, so start-up is not timed);
 * it logs in at its first request and keeps that control connection, as depot's
 * connection pool does (each transfer opens a data connection of its own either
 * way). Uploads one file per `{ file, remotePath }` message on its IPC channel and
 * answers `{ ok: true }` or `{ ok: false, error }`. The password comes from the
 * environment.
 *
 *   node --import tsx bench/basic-ftp-uploader.ts HOST PORT USER CA_FILE
 */
import { createReadStream, readFileSync } from 'node:fs';
import { Client } from 'basic-ftp';

export interface FtpUploadRequest {
  file: string;
  remotePath: string;
}

export type FtpUploadReply = { ok: true } | { ok: false; error: string };

/** The same bound depot's ftp driver puts on each call by default. */
const TIMEOUT_MS = 30_000;

function main(): void {
  const [host, port, user, caFile] = process.argv.slice(2);
  const password = process.env.BENCH_FTP_PASSWORD;
  if (!host || !port || !user || !caFile || !password || !process.send) {
    throw new Error('usage: basic-ftp-uploader.ts HOST PORT USER CA_FILE (with BENCH_FTP_PASSWORD and an IPC channel)');
  }
  const ca = readFileSync(caFile);
  let client: Client | undefined;
  const connected = async (): Promise<Client> => {
    if (client && !client.closed) return client;
    const fresh = new Client(TIMEOUT_MS);
    await fresh.access({ host, port: Number(port), user, password, secure: true, secureOptions: { ca } });
    client = fresh;
    return fresh;
  };
  const reply = (message: FtpUploadReply) => process.send?.(message);
  process.on('message', (request: FtpUploadRequest) => {
    connected()
      .then((c) => c.uploadFrom(createReadStream(request.file), request.remotePath))
      .then(
        () => reply({ ok: true }),
        (error: Error) => {
          // A connection in an unknown state is not used again.
          client?.close();
          reply({ ok: false, error: error.message });
        },
      );
  });
  // The benchmark holds the other end of the channel: when it goes away, so does this process.
  process.once('disconnect', () => process.exit(0));
  process.once('SIGTERM', () => process.exit(0));
  process.stdout.write('basic-ftp uploader ready\n');
}

main();
