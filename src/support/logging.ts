import winston from 'winston';
import { ConfigError } from '../config/config-error';
import { redactor as processRedactor, Redactor } from './redaction';

/**
 * LoggingMechanism: winston to stdout (or stderr for commands whose stdout is
 * their answer), LOG_LEVEL and LOG_FORMAT from the environment, every secret
 * redacted from every line, and the audit trail of what was stored, when and where.
 */
export type Logger = winston.Logger;

export const LOG_LEVELS = ['error', 'warn', 'info', 'debug'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export type LogFormat = 'json' | 'pretty';

export interface LoggerOptions {
  level?: LogLevel;
  format?: LogFormat;
  stream?: NodeJS.WritableStream;
  redactor?: Redactor;
}

/**
 * Masks every secret in each string the line will show — message and fields,
 * nested ones too — before the line is formatted: redacting the formatted JSON
 * would turn a number that equals a short secret into `***` and break the line.
 */
const redactFields = (redactor: Redactor) =>
  winston.format((info) => {
    for (const key of Object.keys(info)) info[key] = redactor.redactValue(info[key]);
    return info;
  })();

const pretty = winston.format.printf((info) => {
  const { level, message, timestamp, ...rest } = info;
  const fields = Object.entries(rest)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
  return `${String(timestamp)} ${level.padEnd(5)} ${String(message)}${fields ? ' ' + fields : ''}`;
});

/** LOG_LEVEL and LOG_FORMAT, or the reason they are wrong. */
export function logSettingsFromEnv(env: NodeJS.ProcessEnv, stream: NodeJS.WritableStream): { level: LogLevel; format: LogFormat } {
  const level = (env.LOG_LEVEL ?? 'info').toLowerCase();
  if (!(LOG_LEVELS as readonly string[]).includes(level)) {
    throw new ConfigError([{ field: 'LOG_LEVEL', message: `must be one of ${LOG_LEVELS.join(', ')}, got '${env.LOG_LEVEL}'` }], 'environment');
  }
  const isTty = (stream as NodeJS.WriteStream).isTTY === true;
  const format = (env.LOG_FORMAT ?? (isTty ? 'pretty' : 'json')).toLowerCase();
  if (format !== 'json' && format !== 'pretty') {
    throw new ConfigError([{ field: 'LOG_FORMAT', message: `must be json or pretty, got '${env.LOG_FORMAT}'` }], 'environment');
  }
  return { level: level as LogLevel, format };
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const stream = options.stream ?? process.stdout;
  const redactor = options.redactor ?? processRedactor;
  const format = options.format ?? 'json';
  return winston.createLogger({
    level: options.level ?? 'info',
    format: winston.format.combine(
      winston.format.timestamp(),
      winston.format.errors({ stack: false }),
      // After errors(), which turns an Error into its message; before anything serializes.
      redactFields(redactor),
      format === 'json' ? winston.format.json() : pretty,
    ),
    transports: [new winston.transports.Stream({ stream })],
  });
}

/** A logger that writes nowhere, for library use without logs. */
export function silentLogger(): Logger {
  return winston.createLogger({ silent: true, transports: [new winston.transports.Console({ silent: true })] });
}

export interface AuditEntry {
  action: 'store' | 'retrieve' | 'delete';
  driver: string;
  key: string;
  taskId?: string;
  size?: number;
  sha256?: string;
  /** `created`, `exists` (idempotent re-store), `deleted`, `read`. */
  outcome: string;
}

/** One line per store, retrieve and delete: what, when (the line's timestamp) and where. */
export function audit(logger: Logger, entry: AuditEntry): void {
  logger.info(`audit ${entry.action} ${entry.driver}:${entry.key}`, { audit: true, ...entry });
}
