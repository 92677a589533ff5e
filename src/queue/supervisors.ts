import { QueueKeys } from 'bullmq';
import type { RedisClient } from './connection';

/**
 * Where `depot worker --processes N` supervisors say what they run, for
 * `depot status`: one hash per queue, `<prefix>:<queue>:depot:supervisors`
 * (below the queue's keys: one Redis Cluster slot with them under a
 * hash-tagged prefix), a field per supervisor holding its report. A report
 * is rewritten every few seconds and on every change, and counts only until
 * its `expiresAt`: a supervisor killed with SIGKILL vanishes from the status
 * by itself; one that stops removes its field.
 */
export interface ChildReport {
  name: string;
  index: number;
  /** Absent while it is being restarted. */
  pid?: number;
  state: 'starting' | 'running' | 'restarting' | 'stopping';
  /** Restarts of this child since the supervisor started. */
  restarts: number;
  startedAt?: string;
}

export interface SupervisorReport {
  name: string;
  host: string;
  pid: number;
  startedAt: string;
  processes: number;
  /** Restarts of all children within the crash-loop window (`supervisor.windowMs`), and the limit (`supervisor.maxRestarts`). */
  recentRestarts: number;
  maxRestarts: number;
  children: ChildReport[];
  updatedAt: string;
  expiresAt: string;
}

export class SupervisorRegistry {
  private readonly key: string;

  constructor(
    private readonly client: RedisClient,
    queue: { prefix: string; name: string },
  ) {
    this.key = new QueueKeys(queue.prefix).toKey(queue.name, 'depot:supervisors');
  }

  async publish(report: SupervisorReport): Promise<void> {
    await this.client.hset(this.key, report.name, JSON.stringify(report));
  }

  async remove(name: string): Promise<void> {
    await this.client.hdel(this.key, name);
  }

  /** The reports not yet expired, by name. */
  async list(now = Date.now()): Promise<SupervisorReport[]> {
    const all = await this.client.hgetall(this.key);
    return Object.values(all)
      .map((text) => {
        try {
          return JSON.parse(text) as SupervisorReport;
        } catch {
          return undefined;
        }
      })
      .filter((r): r is SupervisorReport => r !== undefined && Date.parse(r.expiresAt) > now)
      .sort((a, b) => a.name.localeCompare(b.name));
  }
}
