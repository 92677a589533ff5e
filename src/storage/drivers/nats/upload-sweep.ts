import type { Session } from './connection';
import { allInfos, purgeSubject } from './object-io';
import { chunkSubject, chunkSubjects, nuidOfChunkSubject, uploadWriterGone } from './layout';

/**
 * Removes the chunks of uploads that no description names and whose writer
 * is gone: a process of this host that no longer runs (by the upload id), or
 * any writer whose newest chunk is older than `olderThanMs` (a live upload
 * publishes chunk after chunk). Such chunks are left by a worker killed in
 * the middle of a store, or by a store whose clean-up could not reach the
 * server. Order matters: the chunk subjects are listed before the
 * descriptions, so an upload that publishes its description meanwhile is
 * found named (or still has a fresh chunk, or a live writer) and is kept.
 * Returns how many uploads were removed.
 */
export async function sweepStaleUploads(session: Session, bucket: string, options: { olderThanMs: number; timeoutMs: number; what: string }): Promise<number> {
  const subjects = chunkSubjects(bucket);
  const state = await session.jsm.streams.info(session.stream, { subjects_filter: subjects });
  const uploads = Object.keys(state.state.subjects ?? {}).flatMap((subject) => nuidOfChunkSubject(bucket, subject) ?? []);
  if (uploads.length === 0) return 0;
  const named = new Set<string>();
  for await (const stored of allInfos(session, bucket, options.timeoutMs, options.what)) named.add(stored.info.nuid);
  let removed = 0;
  for (const upload of uploads) {
    if (named.has(upload)) continue;
    const subject = chunkSubject(bucket, upload);
    if (!uploadWriterGone(upload)) {
      const newest = await session.jsm.streams.getMessage(session.stream, { last_by_subj: subject });
      if (!newest || Date.now() - newest.time.getTime() < options.olderThanMs) continue;
    }
    await purgeSubject(session, subject);
    removed += 1;
  }
  return removed;
}
