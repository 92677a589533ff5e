import { createServer, IncomingMessage, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Queue, QueueEvents } from 'bullmq';
import type { Config } from '../config/load';
import { createRedis, waitForRedis } from '../queue/connection';
import { CALLBACK_QUEUE, DELIVERY_STATES } from '../queue/names';
import type { StorageAPI } from '../storage/api';
import type { Logger } from '../support/logging';
import { redactor } from '../support/redaction';
import { ArchivingManager } from '../archiving/manager';
import { BearerAuth } from './bearer-auth';
import { CatalogApi } from './catalog-api';
import { CatalogFigures } from './catalog-metrics';
import { DeferredCatalog, openCatalog } from '../catalog/open';
import { Dashboard, DASHBOARD_PATH } from './dashboard';
import { DriverHealth } from './driver-health';
import { renderMetrics } from './metrics';
import { breakerSettings, RedisBreakers } from '../queue/breaker';
import { taskJobCounts } from '../queue/queue-depth';
import { send, sendJson } from './reply';
import { Handler, Route, routeRequests } from './router';
import { TaskApi } from './task-api';
import { within } from './within';
import { TaskCounters } from './task-counters';
import { ArchiveContent } from './archive-content';
import { answerDrivers } from './drivers-api';
import { Spool } from './spool';
import { TaskScopes } from './task-scope';
import { httpTokens } from './token-scope';
import { isUpload, spoolUse, UploadApi } from './upload-api';
import { formBoundary } from './multipart';
import { sendError } from './reply';
import { ignoreErrorEvents } from '../support/ignore';

/** How often every driver's connection check runs for /health and /metrics. */
export const CHECK_INTERVAL_MS = 60_000;
/** How long a request may wait for Redis before it is answered 503. */
const ANSWER_MS = 5_000;
/** How long any request but an upload may take to send its body (an upload's bound is its idle time). */
const BODY_MS = 30_000;
/** How often leftover spool files are looked for (besides at start): those of tasks whose end was missed. */
const SPOOL_SWEEP_MS = 10 * 60_000;
/** /health and /metrics: read-only, for probes and scrapers. */
const READ = ['GET', 'HEAD'];

export interface DepotHttpServer {
  server: Server;
  /** The address it listens on, e.g. http://127.0.0.1:3000. */
  url: string;
  health: DriverHealth;
  close(): Promise<void>;
}

/**
 * `depot serve` (CONTRACT §6): GET /health and GET /metrics answer from the
 * queue's counts (read on each request) and each driver's last connection
 * check (run every minute), never touching a backend per request; the task
 * API (/v1/tasks, bearer tokens) queues tasks and reports them. Every route
 * is one entry of the table below; router.ts answers what none takes.
 */
export async function startHttpServer(
  config: Config,
  storage: StorageAPI,
  logger: Logger,
  options: { checkIntervalMs?: number } = {},
): Promise<DepotHttpServer> {
  // Reads fail fast instead of queueing while Redis is away (each answer is also bounded in time below).
  const connection = createRedis(config.redis, 'producer');
  ignoreErrorEvents(connection, 'Redis outages show on /health and in failed requests');
  const queue = new Queue(config.queue.name, { connection, prefix: config.queue.prefix });
  const callbacks = new Queue(CALLBACK_QUEUE, { connection, prefix: config.queue.prefix });
  const eventsConnection = createRedis(config.redis, 'worker');
  ignoreErrorEvents(eventsConnection, 'Redis outages show on /health and in failed requests');
  const events = new QueueEvents(config.queue.name, { connection: eventsConnection, prefix: config.queue.prefix });
  ignoreErrorEvents(queue, 'Redis outages show on /health and in failed requests');
  ignoreErrorEvents(callbacks, 'Redis outages show on /health and in failed requests');
  ignoreErrorEvents(events, 'Redis outages show on /health and in failed requests');
  const tasks = new TaskCounters(queue, events);
  const breakers = new RedisBreakers(connection, { prefix: config.queue.prefix, name: config.queue.name }, breakerSettings(config.drivers));
  const health = new DriverHealth(storage, options.checkIntervalMs ?? CHECK_INTERVAL_MS);
  health.start();
  const manager = new ArchivingManager({ redis: config.redis, queueName: config.queue.name, prefix: config.queue.prefix });
  const bearer = new BearerAuth(httpTokens(config.http.tokens));
  const scopes = new TaskScopes(storage, config.defaultDriver, config.failover, ANSWER_MS);
  const api = new TaskApi(
    manager,
    queue,
    config.limits.inlineBytes,
    config.paths.allowed,
    ANSWER_MS,
    Object.keys(config.drivers),
    (request) => bearer.token(request),
    scopes,
    config.defaultDriver,
  );
  // CONTRACT §9: multipart uploads, archive downloads, the drivers' state.
  const spool = new Spool(config.http.spoolDir);
  const uploads = new UploadApi(
    api,
    scopes,
    bearer,
    spool,
    { maxUploadBytes: config.http.maxUploadBytes, idleMs: config.http.uploadIdleMs, answerMs: ANSWER_MS, driverNames: Object.keys(config.drivers) },
    logger,
  );
  const content = new ArchiveContent(storage, bearer, ANSWER_MS, logger);
  const sweepSpool = () =>
    spool
      .sweep((id) => spoolUse(queue, id, ANSWER_MS))
      .then((removed) => removed.length && logger.info(`spool: ${removed.length} leftover file(s) removed (no job refers to them)`, { removed }))
      .catch((error: Error) => logger.warn(`spool: leftovers not swept: ${redactor.redact(error.message)}`));
  // A task's spool file goes when the task has ended: completed, or failed for good (a failed attempt that is retried keeps it).
  const onTaskEnd = ({ jobId }: { jobId: string }) => {
    void (async () => {
      for (const id of spool.idsOfTask(jobId)) if ((await spoolUse(queue, id, ANSWER_MS)) !== 'pending') await spool.taskEnded(id);
    })().catch((error: Error) => logger.warn(`spool: file of job ${jobId} not removed: ${redactor.redact(error.message)}`));
  };
  events.on('completed', onTaskEnd);
  events.on('failed', onTaskEnd);
  // Created when missing; a spool that cannot be made now is reported, and each upload tries again.
  await spool.prepare().catch((error: Error) => logger.warn(`spool ${config.http.spoolDir} not created: ${redactor.redact(error.message)}`));
  void sweepSpool();
  const sweeper = setInterval(() => void sweepSpool(), SPOOL_SWEEP_MS);
  sweeper.unref();
  const dashboard = new Dashboard([queue, callbacks], config.http.auth);
  // Read only, never created here (a worker creates it); opened on first use and again after a failure.
  const catalog = new DeferredCatalog(config.catalog.location, () => openCatalog(config.catalog, 'read'));
  const catalogApi = new CatalogApi(catalog, ANSWER_MS, (request) => bearer.token(request));
  const catalogFigures = new CatalogFigures(catalog, ANSWER_MS);

  const redisOk = async (): Promise<{ ok: boolean; error?: string }> => {
    try {
      await waitForRedis(connection, 2_000, true);
      await within(connection.ping(), ANSWER_MS, 'Redis PING');
      return { ok: true };
    } catch (error) {
      return { ok: false, error: redactor.redact((error as Error).message) };
    }
  };

  const answerHealth: Handler = async ({ response }) => {
    const redis = await redisOk();
    const drivers = health
      .snapshot()
      .map(({ driver, last }) =>
        last ? { driver, ok: last.ok, checkedAt: last.checkedAt, ...(last.error ? { error: last.error } : {}) } : { driver, ok: false, pending: true },
      );
    const ok = redis.ok && drivers.every((d) => d.ok);
    sendJson(response, ok ? 200 : 503, { ok, redis, drivers });
  };
  const answerMetrics: Handler = async ({ response }) => {
    const [counts, workers, webhooks, figures] = await Promise.all([
      within(Promise.all([taskJobCounts(queue), queue.getWorkersCount(), callbacks.getJobCounts(...DELIVERY_STATES)]), ANSWER_MS, 'the queue counts'),
      catalogFigures.current(),
    ]).then(([[c, w, h], f]) => [c, w, h, f] as const);
    // The breakers' gauge is left out, not guessed, when Redis does not answer in time.
    const breakerStates = await within(breakers.report(), ANSWER_MS, 'the circuit breakers').then(
      (reports) => reports.map(({ driver, state }) => ({ driver, state })),
      () => undefined,
    );
    const body = renderMetrics({
      queue: config.queue.name,
      counts,
      workers,
      webhooks,
      drivers: health.snapshot(),
      tasks,
      catalog: figures,
      breakers: breakerStates,
    });
    send(response, 200, 'text/plain; version=0.0.4; charset=utf-8', body);
  };

  // CONTRACT §6. A route is one line: method(s), path, credentials, handler (router.ts says how paths match).
  const routes: Route[] = [
    { method: READ, path: '/health', handle: answerHealth },
    { method: READ, path: '/metrics', handle: answerMetrics },
    {
      method: 'POST',
      path: '/v1/tasks',
      auth: bearer,
      handle: (x) => {
        if (!isUpload(x.request)) return api.create(x);
        const boundary = formBoundary(x.request.headers['content-type']);
        if (boundary) return uploads.create(x, boundary);
        sendError(x.response, 400, { code: 'invalid_task', message: 'a multipart/form-data body needs a valid boundary', field: 'content-type' });
      },
    },
    { method: 'GET', path: '/v1/tasks/:taskId', auth: bearer, handle: (x) => api.status(x) },
    { method: '*', path: '/v1/tasks/*', auth: bearer, handle: (x) => api.otherRequest(x) },
    { method: 'GET', path: '/v1/archives', auth: bearer, handle: (x) => catalogApi.archives(x) },
    { method: 'GET', path: '/v1/audit', auth: bearer, handle: (x) => catalogApi.audit(x) },
    { method: 'GET', path: '/v1/archives/:driver/*', auth: bearer, handle: (x) => content.serve(x) },
    { method: 'GET', path: '/v1/drivers', auth: bearer, handle: answerDrivers(storage, health, bearer) },
    { method: '*', path: `${DASHBOARD_PATH}/*`, auth: dashboard.auth, handle: (x) => dashboard.serve(x) },
  ];
  const listener = routeRequests(routes, logger);
  const server = createServer((request, response) => {
    // Node's requestTimeout would cut off a long upload: every body but an upload's must arrive within BODY_MS instead.
    if (!(request.method === 'POST' && isUpload(request))) boundBody(request, BODY_MS);
    listener(request, response);
  });
  server.requestTimeout = 0;
  server.headersTimeout = 10_000;
  const release = async () => {
    clearInterval(sweeper);
    await health.stop();
    await Promise.allSettled([queue.close(), callbacks.close(), events.close(), manager.close(), catalog.close()]);
    connection.disconnect();
    eventsConnection.disconnect();
  };
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(config.http.port, config.http.host, () => resolve());
    });
  } catch (error) {
    // Nothing may keep the process alive when the port is taken.
    await release();
    throw error;
  }
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    server,
    url: `http://${host}:${address.port}`,
    health,
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      // A request waiting on a hung Redis must not hold the stop.
      server.closeAllConnections();
      await closed;
      await release();
    },
  };
}

/** The request's body must have arrived within `ms`, else its connection is closed (what Node's requestTimeout did for every request). */
function boundBody(request: IncomingMessage, ms: number): void {
  if (request.complete) return;
  // A request whose body has all arrived is never cut off (a download may take long after it).
  const timer = setTimeout(() => request.complete || request.socket.destroy(), ms);
  timer.unref();
  const done = () => clearTimeout(timer);
  request.once('end', done);
  request.once('close', done);
}
