import { accessSync, constants, readFileSync } from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import type { FieldIssue } from '../contract';
import { fieldIssues } from '../contract';
import { DriverDefinition, SettingsError, settingAt, StorageDriverFactory } from '../storage/factory';
import { loadDriverPlugin, PluginLoadError } from '../storage/plugins';
import { defaultDriverFactory } from '../storage/drivers';
import { redactor as processRedactor, Redactor } from '../support/redaction';
import { ConfigError } from './config-error';
import { embeddedDefault } from './embedded-default';
import { configSchema, GLOBAL_SECRET_FIELDS, GLOBAL_SECRET_LISTS, RawConfig, reservedNameProblem } from './schema';
import { interpolate, interpolateAll, readSecretFile, resolveSecretField, resolveSecretList, SecretContext } from './secrets';
import { CatalogTarget, catalogLocation, parseCatalogUrl } from '../catalog/location';
import { hasHashTag, RedisTopology } from '../queue/connection';

export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';

export interface DriverConfig {
  type: string;
  [setting: string]: unknown;
}

/** The validated configuration; secrets resolved (and registered for redaction). */
export type Config = Omit<RawConfig, 'redis' | 'drivers' | 'defaultDriver' | 'catalog'> & {
  /** The file it came from, or 'embedded default'. */
  source: string;
  /** CONTRACT §10: a single server, Sentinel or Cluster; credentials resolved. */
  redis: RedisTopology;
  defaultDriver: string;
  drivers: Record<string, DriverConfig>;
  /** `url` as configured (credentials in it); `target` with a SQLite path made absolute; `location` as messages show it. */
  catalog: { url: string; target: CatalogTarget; location: string };
};

export interface LoadOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  factory?: StorageDriverFactory;
  redactor?: Redactor;
}

/** Reads DEPOT_CONFIG (JSON or YAML) or the embedded default, and validates every field. Throws ConfigError. */
export function loadConfig(options: LoadOptions = {}): Config {
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  const file = env.DEPOT_CONFIG ? path.resolve(cwd, env.DEPOT_CONFIG) : undefined;
  const source = file ?? 'embedded default';
  let raw: unknown;
  if (file) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (error) {
      throw new ConfigError([{ field: 'DEPOT_CONFIG', message: `cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? 'error'}` }], source);
    }
    raw = parseText(text, source);
  } else {
    raw = embeddedDefault(env, cwd);
  }
  return validateConfig(raw, {
    env,
    source,
    baseDir: file ? path.dirname(file) : cwd,
    factory: options.factory ?? defaultDriverFactory(),
    redactor: options.redactor ?? processRedactor,
  });
}

/** YAML is a superset of JSON: one parser reads both. */
function parseText(text: string, source: string): unknown {
  try {
    const parsed: unknown = YAML.parse(text, { uniqueKeys: true });
    return parsed ?? {};
  } catch (error) {
    const message = (error as Error).message.split('\n')[0];
    throw new ConfigError([{ field: '(file)', message: `not valid JSON or YAML: ${message}` }], source);
  }
}

interface ValidateOptions {
  env: NodeJS.ProcessEnv;
  source: string;
  baseDir: string;
  factory: StorageDriverFactory;
  redactor: Redactor;
}

export function validateConfig(raw: unknown, options: ValidateOptions): Config {
  const { factory, source } = options;
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new ConfigError([{ field: '(root)', message: 'must be a mapping of settings' }], source);
  }
  const issues: FieldIssue[] = [];
  const ctx: SecretContext = { env: options.env, baseDir: options.baseDir, redactor: options.redactor, issues };
  const tree = structuredClone(raw) as Record<string, unknown>;
  // First: the secret and file passes below walk the drivers by name.
  const reserved = reservedNameIssues(tree);
  if (reserved.length) throw new ConfigError(reserved, source);

  // Secret fields are resolved apart from ordinary ${ENV} interpolation, which must never see them.
  const secretAt: Array<{ holder: unknown; field: string; at: string; list: boolean }> = [];
  const fileAt: Array<{ holder: Record<string, unknown>; field: string; at: string }> = [];
  for (const [holderPath, field, list] of [
    ...GLOBAL_SECRET_FIELDS.map((p) => [p.slice(0, -1), p[p.length - 1], false] as const),
    ...GLOBAL_SECRET_LISTS.map((p) => [p.slice(0, -1), p[p.length - 1], true] as const),
  ]) {
    secretAt.push({ holder: dig(tree, holderPath), field, at: holderPath.join('.'), list });
  }
  const drivers = tree.drivers;
  if (drivers && typeof drivers === 'object') {
    for (const [name, settings] of Object.entries(drivers as Record<string, unknown>)) {
      // The type decides which fields are secrets, so it is resolved before anything else.
      if (settings && typeof settings === 'object' && typeof (settings as { type?: unknown }).type === 'string') {
        const holder = settings as { type: string };
        holder.type = interpolate(holder.type, `drivers.${name}.type`, ctx);
      }
      if (!settings || typeof settings !== 'object') continue;
      const definition = Object.hasOwn(settings, 'module') ? pluginIn(settings, name, factory, ctx) : factory.definitionOf(settings);
      for (const secret of definition?.secretFields ?? []) {
        const { holder, key } = settingAt(settings as Record<string, unknown>, secret);
        const parent = secret.includes('.') ? `.${secret.slice(0, secret.lastIndexOf('.'))}` : '';
        secretAt.push({ holder, field: key, at: `drivers.${name}${parent}`, list: false });
      }
      for (const file of definition?.fileFields ?? []) {
        const { holder, key } = settingAt(settings as Record<string, unknown>, file);
        if (holder) fileAt.push({ holder, field: key, at: `drivers.${name}.${file}` });
      }
    }
  }
  const skip = new Set(secretAt.flatMap((s) => [`${s.at}.${s.field}`, `${s.at}.${s.field}File`]));
  skip.add('catalog.urlFile');
  interpolateAll(tree, '', ctx, skip);
  resolveCatalogUrlFile(tree, ctx);
  for (const s of secretAt) (s.list ? resolveSecretList : resolveSecretField)(s.holder, s.field, s.at, ctx);
  for (const f of fileAt) resolveFileField(f.holder, f.field, f.at, options.baseDir, issues);
  if (issues.length) throw new ConfigError(issues, source);

  const parsed = configSchema.safeParse(tree);
  if (!parsed.success) throw new ConfigError(fieldIssues(parsed.error), source);
  const config = parsed.data;

  const driverConfigs: Record<string, DriverConfig> = {};
  for (const [name, settings] of Object.entries(config.drivers)) {
    try {
      driverConfigs[name] = factory.parseSettings(name, settings);
    } catch (error) {
      if (error instanceof SettingsError) issues.push(...error.issues);
      else throw error;
    }
  }
  const names = Object.keys(config.drivers);
  if (names.length === 0) issues.push({ field: 'drivers', message: 'must configure at least one driver' });
  const defaultDriver = config.defaultDriver ?? (names.length === 1 ? names[0] : undefined);
  if (!defaultDriver && names.length > 1) issues.push({ field: 'defaultDriver', message: 'must name one of the drivers when there are several' });
  if (config.defaultDriver && !names.includes(config.defaultDriver)) {
    issues.push({ field: 'defaultDriver', message: `no driver named '${config.defaultDriver}' (drivers: ${names.join(', ')})` });
  }
  for (const [from, to] of Object.entries(config.failover)) {
    if (!names.includes(from)) issues.push({ field: `failover.${from}`, message: `no driver named '${from}'` });
    to.forEach((target, i) => {
      if (!names.includes(target)) issues.push({ field: `failover.${from}[${i}]`, message: `no driver named '${target}'` });
      else if (target === from) issues.push({ field: `failover.${from}[${i}]`, message: 'a driver cannot be its own fallback' });
    });
  }
  const redis = redisTopology(config, options, issues);
  const http = withPlatformPort(config.http, dig(tree, ['http', 'host']) !== undefined, options.env, issues);
  httpScopeIssues(config.http, names, issues);
  // CONTRACT §9: relative to the config file's folder, like every relative path.
  http.spoolDir = path.resolve(options.baseDir, http.spoolDir);
  const catalogTarget = parseCatalogUrl(config.catalog.url, options.baseDir);
  if (!catalogTarget) issues.push({ field: 'catalog.url', message: 'must be sqlite:<path> or a postgres:// URL' });
  else if (catalogTarget.kind === 'postgres') for (const form of urlPasswordForms(catalogTarget.url, new URL(catalogTarget.url))) options.redactor.add(form);
  if (issues.length || !catalogTarget) throw new ConfigError(issues, source);

  return {
    ...config,
    http,
    source,
    redis,
    defaultDriver: defaultDriver as string,
    drivers: driverConfigs,
    catalog: { url: config.catalog.url, target: catalogTarget, location: catalogLocation(catalogTarget) },
  };
}

/**
 * CONTRACT §10: the topology the config names, or a single server at
 * `REDIS_URL` (or the default) when it names none. A cluster keeps a queue's
 * keys in one slot only with a hash tag in `queue.prefix`; without one every
 * BullMQ script would fail with CROSSSLOT, so the config is refused at start.
 */
function redisTopology(config: RawConfig, options: ValidateOptions, issues: FieldIssue[]): RedisTopology {
  const redis = config.redis;
  if (redis?.sentinels && redis.name !== undefined) {
    const { sentinels, name, username, password, sentinelPassword, db, tls } = redis;
    return { kind: 'sentinel', sentinels, name, username, password, sentinelPassword, db, tls };
  }
  if (redis?.cluster) {
    if (!hasHashTag(config.queue.prefix)) {
      issues.push({
        field: 'queue.prefix',
        message: `must hold a hash tag such as {depot} with redis.cluster (it is '${config.queue.prefix}'): a queue's keys must share one cluster slot`,
      });
    }
    const { cluster, username, password, tls } = redis;
    return { kind: 'cluster', nodes: cluster, username, password, tls };
  }
  const url = redis?.url ?? options.env.REDIS_URL ?? DEFAULT_REDIS_URL;
  try {
    const parsed = new URL(url);
    if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') throw new Error('protocol');
    for (const form of urlPasswordForms(url, parsed)) options.redactor.add(form);
  } catch {
    issues.push({ field: redis?.url ? 'redis.url' : 'REDIS_URL', message: 'must be a redis:// or rediss:// URL' });
  }
  return { kind: 'single', url };
}

/**
 * `catalog.urlFile`: the whole URL from a file (credentials and all), read as
 * a secret; `catalog.url` may hold `${ENV}` references anywhere instead, as
 * `redis.url` may. Either way the password is masked wherever it could appear.
 */
function resolveCatalogUrlFile(tree: Record<string, unknown>, ctx: SecretContext): void {
  const catalog = tree.catalog;
  if (typeof catalog !== 'object' || catalog === null || !Object.hasOwn(catalog, 'urlFile')) return;
  const holder = catalog as Record<string, unknown>;
  if (holder.url !== undefined) {
    ctx.issues.push({ field: 'catalog.url', message: 'give either url or urlFile, not both' });
    return;
  }
  const url = readSecretFile(holder.urlFile, 'catalog.urlFile', ctx);
  delete holder.urlFile;
  if (url !== undefined) holder.url = url.trim();
}

/**
 * Platforms (Heroku, Scalingo, Cloud Foundry, …) route HTTP to the Procfile's
 * `web` process on `$PORT`, from outside the container: `PORT` sets
 * `http.port`, and the server binds every interface unless `http.host` is set.
 */
function withPlatformPort(http: RawConfig['http'], hostGiven: boolean, env: NodeJS.ProcessEnv, issues: FieldIssue[]): RawConfig['http'] {
  if (env.PORT === undefined || env.PORT === '') return http;
  const port = Number(env.PORT);
  if (!/^\d+$/.test(env.PORT) || port > 65535) {
    issues.push({ field: 'PORT', message: 'must be a port number (0-65535)' });
    return http;
  }
  return { ...http, port, host: hostGiven ? http.host : '0.0.0.0' };
}

/** A named token's scope may name only configured drivers (a typo would otherwise lock its producer out without a word). */
function httpScopeIssues(http: RawConfig['http'], drivers: readonly string[], issues: FieldIssue[]): void {
  http.tokens.forEach((entry, i) => {
    if (typeof entry === 'string') return;
    (entry.scope.drivers ?? []).forEach((driver, j) => {
      if (!drivers.includes(driver)) issues.push({ field: `http.tokens[${i}].scope.drivers[${j}]`, message: `no driver named '${driver}'` });
    });
  });
}

/**
 * The password of a URL (Redis's, the catalog's) in every form a message may
 * show it: as written in the URL (`p%40ss%2fword`, escapes in any case,
 * unreserved characters escaped or not), as the URL parser re-encodes it, and
 * decoded (`p@ss/word`, what the server gets). The redactor adds the
 * URL-encoded form of each.
 */
function urlPasswordForms(written: string, url: URL): string[] {
  if (!url.password) return [];
  // The userinfo ends at the authority's last '@'.
  const userinfo = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/([^/?#]*)@/.exec(written)?.[1] ?? '';
  const asWritten = userinfo.includes(':') ? userinfo.slice(userinfo.indexOf(':') + 1) : '';
  return [asWritten, url.password, decodeURIComponent(url.password)].filter((form) => form !== '');
}

/** Driver names that are Object's own property names, as keys of `drivers` and `failover` or where a name is referenced. */
function reservedNameIssues(tree: Record<string, unknown>): FieldIssue[] {
  const named: Array<[string, unknown]> = [['defaultDriver', tree.defaultDriver]];
  for (const section of ['drivers', 'failover']) {
    const map = Object.hasOwn(tree, section) ? tree[section] : undefined;
    if (typeof map !== 'object' || map === null || Array.isArray(map)) continue; // the schema reports a wrong type
    for (const [name, value] of Object.entries(map)) {
      named.push([`${section}.${name}`, name]);
      if (section === 'failover' && Array.isArray(value)) value.forEach((target, i) => named.push([`failover.${name}[${i}]`, target]));
    }
  }
  const issues: FieldIssue[] = [];
  for (const [field, value] of named) {
    const problem = typeof value === 'string' ? reservedNameProblem(value) : null;
    if (problem) issues.push({ field, message: problem });
  }
  return issues;
}

function dig(tree: Record<string, unknown>, keys: readonly string[]): unknown {
  let node: unknown = tree;
  for (const key of keys) node = node && typeof node === 'object' ? (node as Record<string, unknown>)[key] : undefined;
  return node;
}

/**
 * A driver with `module:` is a plugin (CONTRACT §11): its module is loaded now,
 * since its definition says which settings are secrets and files. `module` is
 * replaced by the file it resolved to (against the config file's folder), and
 * `type`, when not given, is the plugin's; given, it must be the plugin's.
 */
function pluginIn(settings: object, name: string, factory: StorageDriverFactory, ctx: SecretContext): DriverDefinition | undefined {
  const holder = settings as Record<string, unknown>;
  const field = `drivers.${name}.module`;
  if (typeof holder.module !== 'string' || holder.module === '') {
    ctx.issues.push({ field, message: 'must name a package or a path' });
    return undefined;
  }
  try {
    const { file, definition } = loadDriverPlugin(interpolate(holder.module, field, ctx), ctx.baseDir);
    if (factory.definition(definition.type)) {
      ctx.issues.push({ field, message: `defines type '${definition.type}', which is built in; a plugin needs a type of its own` });
      return undefined;
    }
    holder.type ??= definition.type;
    if (holder.type !== definition.type) {
      ctx.issues.push({ field: `drivers.${name}.type`, message: `must be '${definition.type}', the type ${file} defines (or left out)` });
      return undefined;
    }
    holder.module = file;
    return definition;
  } catch (error) {
    if (!(error instanceof PluginLoadError)) throw error;
    ctx.issues.push({ field, message: error.message });
    return undefined;
  }
}

/** A setting naming a file: resolved against the config file's directory, and readable now rather than at the first connection. */
function resolveFileField(holder: Record<string, unknown>, field: string, at: string, baseDir: string, issues: FieldIssue[]): void {
  const value = holder[field];
  if (typeof value !== 'string' || value === '') return; // the schema reports a wrong type
  const file = path.resolve(baseDir, value);
  try {
    accessSync(file, constants.R_OK);
    holder[field] = file;
  } catch (error) {
    issues.push({ field: at, message: `cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}` });
  }
}
