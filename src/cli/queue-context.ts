import { ArchivingManager } from '../archiving/manager';
import { Config, loadConfig } from '../config/load';

/** Commands that go through the queue: the config and a producer on it. */
export function managerFromConfig(): { config: Config; manager: ArchivingManager } {
  const config = loadConfig();
  // Tasks queued from the command line are audited as the operator's (actor `cli`).
  const manager = new ArchivingManager({ redis: config.redis, queueName: config.queue.name, prefix: config.queue.prefix, actor: 'cli' });
  return { config, manager };
}
