/**
 * The HTTP peer of depot's uploads: what an operator would write without it —
 * a minimal Node HTTP server that streams each `PUT /<name>` body into a new
 * file of its directory and fsyncs it before answering 201. No form parsing,
 * no hashing, no spool, no queue, no second copy, no manifest.
 *
 * Started once per measurement (like depot serve and its worker, so start-up is
 * not timed); listens on 127.0.0.1 only. Its IPC channel is only there so that
 * it goes away with the benchmark.
 *
 *   node --import tsx bench/fsync-http-server.ts DIR PORT
 */
import { createWriteStream } from 'node:fs';
import { createServer } from 'node:http';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';

function main(): void {
  const [dir, port] = process.argv.slice(2);
  if (!dir || !port) throw new Error('usage: fsync-http-server.ts DIR PORT');
  const server = createServer((request, response) => {
    const name = path.basename(decodeURIComponent(request.url ?? ''));
    if (request.method !== 'PUT' || !name || name === '.' || name === '..') {
      response.writeHead(400).end();
      return;
    }
    // `flush`: the stream fsyncs the file before it closes it; `wx`: a name is written once.
    pipeline(request, createWriteStream(path.join(dir, name), { flags: 'wx', flush: true })).then(
      () => response.writeHead(201).end(),
      (error: Error) => response.writeHead(500).end(error.message),
    );
  });
  // A long upload is not cut off by Node's whole-request timeout (depot serve lifts it for uploads too).
  server.requestTimeout = 0;
  server.listen(Number(port), '127.0.0.1', () => process.stdout.write('fsync http server ready\n'));
  // The benchmark holds the other end of the channel: when it goes away, so does this process.
  process.once('disconnect', () => process.exit(0));
  process.once('SIGTERM', () => process.exit(0));
}

main();
