import { setTimeout as sleep } from 'node:timers/promises';
import type { JetStreamPublishOptions, PubAck } from '@nats-io/jetstream';
import { DepotError } from '../../../contract';
import type { Session } from './connection';
import { isStreamNotFound, isNoResponders, isTransient } from './errors';

/**
 * One publish to JetStream, bounded by `budgetMs` in all: tried again while
 * the failure is one another try can get past (a server that did not answer,
 * a connection the client is re-making, a stream leader being elected after
 * a node left) and time remains. Every try carries the same `msgID`, so a try
 * whose acknowledgement was lost is not stored twice: the stream answers the
 * next one as a duplicate of it (within its duplicate window, 2 minutes by
 * default). A try is given a quarter of the budget (at least a second), so
 * that a request lost with a server that went away leaves time for more.
 */
export async function publishRetried(
  session: Session,
  subject: string,
  payload: Uint8Array | string,
  options: { msgID: string; expect?: JetStreamPublishOptions['expect'] },
  budgetMs: number,
  signal?: AbortSignal,
): Promise<PubAck> {
  const until = Date.now() + budgetMs;
  const perTry = Math.max(1000, Math.floor(budgetMs / 4));
  let checkedStream = false;
  for (let attempt = 1; ; attempt++) {
    if (signal?.aborted) throw new DepotError('unavailable', 'aborted');
    const left = until - Date.now();
    try {
      return await session.js.publish(subject, payload, { msgID: options.msgID, expect: options.expect, timeout: Math.max(1, Math.min(perTry, left)) });
    } catch (error) {
      if (isNoResponders(error) && !checkedStream) {
        // No stream took the subject: the bucket may be gone (then say so), or its leader away (then wait for it).
        checkedStream = true;
        await session.quick.streams.info(session.stream).catch((infoError: unknown) => {
          if (isStreamNotFound(infoError)) throw infoError;
        });
      }
      const pause = Math.min(1000, 50 * 2 ** (attempt - 1));
      if (!isTransient(error) || Date.now() + pause >= until || signal?.aborted) throw error;
      await sleep(pause, undefined, { signal }).catch(() => undefined);
    }
  }
}
