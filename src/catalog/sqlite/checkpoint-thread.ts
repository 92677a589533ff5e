import { DatabaseSync } from 'node:sqlite';
import { parentPort, workerData } from 'node:worker_threads';
import type { WriterSetup } from './writer';

/**
 * The SQLite catalog's checkpoints, in a thread of their own beside the
 * connection opened for writing (database.ts starts and ends it). A
 * checkpoint copies the WAL into the database file and flushes both (two
 * fsyncs, 10 ms to hundreds under load); run by the writing connection
 * itself, as SQLite does by default every 1000 pages, it held the worker's
 * event loop — and every store waiting for a catalog write — that long.
 * PASSIVE, it never waits for a writer or a reader and never holds them:
 * writers append to the WAL meanwhile, and start it over once a checkpoint
 * has caught up. A connection still checkpoints by itself should the WAL
 * outgrow WRITER_CHECKPOINT_PAGES (database.ts), so it stays bounded even
 * if this thread falls behind.
 */
const setup = workerData as WriterSetup;
/** Often enough that the WAL stays a few MiB under a steady load of stores. */
const EVERY_MS = 250;

const db = new DatabaseSync(setup.file);
db.exec('PRAGMA busy_timeout = 0');
db.exec('PRAGMA synchronous = NORMAL');
const checkpoint = db.prepare('PRAGMA wal_checkpoint(PASSIVE)');

const timer = setInterval(() => {
  try {
    checkpoint.get();
  } catch {
    // Locked or busy for a moment: the next turn tries again, and the writer's own checkpoint bounds the WAL.
  }
}, EVERY_MS);

parentPort?.on('message', (message: { close?: true }) => {
  if (!message.close) return;
  clearInterval(timer);
  db.close();
  parentPort?.close();
});
