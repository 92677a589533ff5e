import { QueueKeys } from 'bullmq';
import type { Admission, AttemptOutcome, BreakerState, CircuitBreakers } from '../archiving/breakers';
import { BreakerSettings, breakerOf } from '../storage/driver-settings';
import type { Logger } from '../support/logging';
import { redactor } from '../support/redaction';

/**
 * The drivers' circuit breakers (CONTRACT §10) kept in Redis, one hash per
 * driver, shared by every worker process of the queue:
 * `<prefix>:<queue>:depot:breaker:<driver>` — below the queue's own keys, so
 * a hash-tagged prefix (`{depot}`) puts it in the queue's Redis Cluster slot;
 * a custom jobId never contains ':', so no job's keys can meet it.
 *
 * Fields: `failures` (consecutive `unavailable` attempts, by any worker),
 * `openUntil` (when the cool-down ends, in Redis's clock; absent: closed) and
 * `probeUntil` (the half-open probe's lease). Every change is one Lua script
 * on the one key, so concurrent workers never lose a count or let two
 * probes through, and times are Redis's, never a worker's clock.
 */

/** The fields read by every script: `now` in ms (Redis TIME), and the hash's three numbers (0 when absent). */
const READ = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local h = redis.call('HMGET', KEYS[1], 'failures', 'openUntil', 'probeUntil')
local failures = tonumber(h[1] or '0') or 0
local openUntil = tonumber(h[2] or '0') or 0
local probeUntil = tonumber(h[3] or '0') or 0
`;

/**
 * ARGV: probe lease (ms), longest wait while another worker probes (ms).
 * Returns { verdict, ms, failures }: verdict 1 admitted, 2 admitted as the
 * probe, 0 refused (`ms` from now until it is worth asking again).
 */
const ADMIT =
  READ +
  `
if openUntil == 0 then return {1, 0, failures} end
if now < openUntil then return {0, openUntil - now, failures} end
if probeUntil > now then return {0, math.min(probeUntil - now, tonumber(ARGV[2])), failures} end
redis.call('HSET', KEYS[1], 'probeUntil', now + tonumber(ARGV[1]))
return {2, 0, failures}
`;

/**
 * ARGV: outcome (success, unavailable, neutral), probe (1/0), failures that
 * open it, cool-down (ms), how long a key with no news is kept (ms). Returns
 * 1 when this outcome opened (or re-opened) the breaker, -1 when it closed
 * it, 0 otherwise.
 */
const RECORD =
  READ +
  `
local outcome = ARGV[1]
local probe = ARGV[2] == '1'
if outcome == 'success' then
  if redis.call('DEL', KEYS[1]) == 1 and openUntil > 0 then return -1 end
  return 0
end
if outcome == 'neutral' then
  if probe then redis.call('HDEL', KEYS[1], 'probeUntil') end
  return 0
end
failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[5]))
if probe or (failures >= tonumber(ARGV[3]) and (openUntil == 0 or now >= openUntil)) then
  redis.call('HSET', KEYS[1], 'openUntil', now + tonumber(ARGV[4]))
  redis.call('HDEL', KEYS[1], 'probeUntil')
  return 1
end
return 0
`;

/** Returns { state: 0 closed, 1 open, 2 half-open; ms until the cool-down ends; failures }. */
const STATE =
  READ +
  `
if openUntil == 0 then return {0, 0, failures} end
if now < openUntil then return {1, openUntil - now, failures} end
return {2, 0, failures}
`;

/** What runs the scripts: an ioredis client (Redis or Cluster). */
export interface ScriptRunner {
  eval(script: string, numKeys: number, ...args: Array<string | number>): Promise<unknown>;
}

export interface BreakerReport {
  driver: string;
  state: BreakerState;
  /** Consecutive `unavailable` attempts counted so far. */
  failures: number;
  /** While open: when the cool-down ends (ISO 8601, by this process's clock). */
  openUntil?: string;
  /** false when the driver's config turns it off (`breaker: false`): then always closed. */
  enabled: boolean;
}

/** How long a breaker's key is kept after its last failure: a removed driver leaves nothing behind for long. */
const KEEP_MS = 7 * 24 * 3_600_000;
/** A worker waiting while another worker probes asks again after at most this long. */
const PROBE_POLL_MS = 5_000;
/** An admission that found the breaker closed with no failures is reused this long: no round trip per store. */
const CLEAN_REUSE_MS = 250;
/** Bound on each script call; past it, or when Redis fails, the driver is admitted (the breaker fails open). */
const CALL_TIMEOUT_MS = 2_000;

export class RedisBreakers implements CircuitBreakers {
  private readonly keys: QueueKeys;
  /** Per driver: until when a clean admission may be reused (0: ask Redis). */
  private readonly clean = new Map<string, number>();
  private lastWarning = 0;

  constructor(
    private readonly client: ScriptRunner,
    private readonly queue: { prefix: string; name: string },
    /** Each configured driver's settings; undefined: that breaker is off. */
    private readonly settings: Readonly<Record<string, BreakerSettings | undefined>>,
    private readonly logger?: Logger,
    private readonly now: () => number = Date.now,
  ) {
    this.keys = new QueueKeys(queue.prefix);
  }

  /** The Redis key of a driver's breaker. */
  keyOf(driver: string): string {
    return this.keys.toKey(this.queue.name, `depot:breaker:${driver}`);
  }

  async admit(driver: string): Promise<Admission> {
    const settings = this.settingsOf(driver);
    if (!settings || (this.clean.get(driver) ?? 0) > this.now()) return { admitted: true, probe: false };
    const reply = await this.run(ADMIT, driver, settings.coolDownMs, PROBE_POLL_MS);
    if (!reply) return { admitted: true, probe: false };
    const [verdict, ms, failures] = reply;
    if (verdict === 0) return { admitted: false, retryAt: this.now() + Math.max(ms, 1) };
    if (verdict === 1 && failures === 0) this.clean.set(driver, this.now() + CLEAN_REUSE_MS);
    return { admitted: true, probe: verdict === 2 };
  }

  async record(driver: string, outcome: AttemptOutcome, probe: boolean): Promise<void> {
    const settings = this.settingsOf(driver);
    if (!settings) return;
    // A success on a breaker last seen closed and clean changes nothing: no write per store.
    if (outcome === 'success' && !probe && (this.clean.get(driver) ?? 0) > this.now()) return;
    if (outcome === 'neutral' && !probe) return;
    if (outcome !== 'success') this.clean.delete(driver);
    const reply = await this.run(RECORD, driver, outcome, probe ? 1 : 0, settings.failures, settings.coolDownMs, KEEP_MS);
    const change = reply?.[0];
    if (change === 1) this.logger?.warn(`circuit breaker of driver ${driver} open for ${settings.coolDownMs} ms`, { driver, breaker: 'open' });
    if (change === -1) this.logger?.info(`circuit breaker of driver ${driver} closed`, { driver, breaker: 'closed' });
  }

  /** Every configured driver's breaker as `depot status` and /metrics show it. Throws when Redis does not answer. */
  async report(): Promise<BreakerReport[]> {
    return Promise.all(
      Object.keys(this.settings).map(async (driver): Promise<BreakerReport> => {
        if (!this.settingsOf(driver)) return { driver, state: 'closed', failures: 0, enabled: false };
        const [state, ms, failures] = toNumbers(await this.client.eval(STATE, 1, this.keyOf(driver)));
        if (state === 1) return { driver, state: 'open', failures, enabled: true, openUntil: new Date(this.now() + ms).toISOString() };
        return { driver, state: state === 2 ? 'half-open' : 'closed', failures, enabled: true };
      }),
    );
  }

  private settingsOf(driver: string): BreakerSettings | undefined {
    return Object.hasOwn(this.settings, driver) ? this.settings[driver] : undefined;
  }

  /** One script on a driver's key, bounded; undefined (and a warning now and then) when Redis fails or is slow. */
  private async run(script: string, driver: string, ...args: Array<string | number>): Promise<number[] | undefined> {
    let timer: NodeJS.Timeout | undefined;
    try {
      const reply = await Promise.race([
        this.client.eval(script, 1, this.keyOf(driver), ...args),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer within ${CALL_TIMEOUT_MS} ms`)), CALL_TIMEOUT_MS);
        }),
      ]);
      return toNumbers(reply);
    } catch (error) {
      if (Date.now() - this.lastWarning > 10_000) {
        this.lastWarning = Date.now();
        this.logger?.warn(`circuit breaker of driver ${driver} not consulted (the driver is tried): ${redactor.redact((error as Error).message)}`, { driver });
      }
      return undefined;
    } finally {
      clearTimeout(timer);
    }
  }
}

function toNumbers(reply: unknown): number[] {
  return (Array.isArray(reply) ? reply : [reply]).map((value) => Number(value) || 0);
}

/** Each configured driver's breaker settings (undefined: off), as RedisBreakers takes them. */
export function breakerSettings(drivers: Readonly<Record<string, Readonly<Record<string, unknown>>>>): Record<string, BreakerSettings | undefined> {
  return Object.fromEntries(Object.entries(drivers).map(([name, settings]) => [name, breakerOf(settings)]));
}
