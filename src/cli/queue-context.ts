import { ArchivingManager } from '../archiving/manager';
import { Config, loadConfig } from '../config/load';

/** Commands that go through the queue: the config and a producer on it. */
export function managerFromConfig(): { config: Config; manager: ArchivingManager } {
  const config = loadConfig();
  const manager = new ArchivingManager({ redisUrl: config.redis.url, queueName: config.queue.name, prefix: config.queue.prefix });
  return { config, manager };
}
