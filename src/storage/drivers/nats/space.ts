import type { JetStreamUsageAccountLimits } from '@nats-io/jetstream';
import type { Space } from '../../../contract';
import type { Session } from './connection';
import type { NatsSettings } from './types';

/**
 * Space as the server reports it: used is the bucket's stream's bytes; total
 * and free come from the limits that bound it, the tightest first — the
 * stream's own `max_bytes`, and the account's JetStream storage limit for
 * the bucket's storage type (the limit of its replica tier, `R<n>`, where the
 * account has tiered limits). Without any limit (JetStream's default), only
 * used is reported: the server names no total.
 */
export async function spaceOf(session: Session, settings: NatsSettings): Promise<Space> {
  const [account, stream] = await Promise.all([session.jsm.getAccountInfo(), session.jsm.streams.info(session.stream)]);
  const used = stream.state.bytes;
  const memory = stream.config.storage === 'memory';
  const bounds: Array<{ total: number; free: number }> = [];
  const maxBytes = stream.config.max_bytes;
  if (maxBytes !== undefined && maxBytes > 0) bounds.push({ total: maxBytes, free: Math.max(0, maxBytes - used) });
  const tier: JetStreamUsageAccountLimits | undefined = account.tiers?.[`R${stream.config.num_replicas || settings.replicas}`];
  for (const usage of [account, tier]) {
    if (!usage) continue;
    const limit = memory ? usage.limits.max_memory : usage.limits.max_storage;
    const taken = memory ? usage.memory : usage.storage;
    if (limit > 0) bounds.push({ total: limit, free: Math.max(0, limit - taken) });
  }
  if (bounds.length === 0) return { usedBytes: used };
  return {
    usedBytes: used,
    totalBytes: Math.min(...bounds.map((b) => b.total)),
    freeBytes: Math.min(...bounds.map((b) => b.free)),
  };
}
