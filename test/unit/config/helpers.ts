import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ConfigError } from '../../../src/config/config-error';
import { Config, loadConfig } from '../../../src/config/load';
import type { FieldIssue } from '../../../src/contract';
import { defaultDriverFactory } from '../../../src/storage/drivers';
import type { StorageDriverFactory } from '../../../src/storage/factory';
import { Redactor } from '../../../src/support/redaction';
import { fakeDriverDefinition } from '../fake-driver';

const dirs: string[] = [];

/** A fresh temporary directory, removed after the test file. */
export function tempDir(prefix = 'depot-config-'): string {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  dirs.push(dir);
  return dir;
}

export function removeTempDirs(): void {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}

export function writeFile(dir: string, relative: string, text: string): string {
  const file = path.join(dir, relative);
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, text);
  return file;
}

/** The built-in factory plus the `fake` type, which has secret fields (password, token). */
export function factoryWithFake(): StorageDriverFactory {
  return defaultDriverFactory().register(fakeDriverDefinition());
}

export interface Loaded {
  config: Config;
  redactor: Redactor;
}

export function load(env: NodeJS.ProcessEnv, cwd: string, factory: StorageDriverFactory = factoryWithFake()): Loaded {
  const redactor = new Redactor();
  return { config: loadConfig({ env, cwd, redactor, factory }), redactor };
}

/** Writes `text` as the config file and loads it with DEPOT_CONFIG pointing at it. */
export function loadText(text: string, env: NodeJS.ProcessEnv = {}, fileName = 'depot.yaml'): Loaded & { dir: string; file: string } {
  const dir = tempDir();
  const file = writeFile(dir, fileName, text);
  return { ...load({ ...env, DEPOT_CONFIG: file }, dir), dir, file };
}

/** The ConfigError that loading throws; fails the test when it does not throw one. */
export function configError(run: () => unknown): ConfigError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error('expected a ConfigError, but the configuration was accepted');
}

export function loadTextError(text: string, env: NodeJS.ProcessEnv = {}, fileName = 'depot.yaml'): ConfigError & { redactor: Redactor } {
  const dir = tempDir();
  const file = writeFile(dir, fileName, text);
  const redactor = new Redactor();
  const error = configError(() => loadConfig({ env: { ...env, DEPOT_CONFIG: file }, cwd: dir, redactor, factory: factoryWithFake() }));
  return Object.assign(error, { redactor });
}

export function fields(issues: FieldIssue[]): string[] {
  return issues.map((i) => i.field);
}

export function issueFor(error: ConfigError, field: string): FieldIssue {
  const issue = error.issues.find((i) => i.field === field);
  if (!issue) throw new Error(`no issue for ${field}; issues: ${JSON.stringify(error.issues)}`);
  return issue;
}

/** Everything a ConfigError can show: its message and every issue. */
export function shownText(error: ConfigError): string {
  return `${error.message}\n${JSON.stringify(error.issues)}\n${String(error.stack)}`;
}

/** A minimal valid driver section in YAML. */
export const FS_DRIVER = 'drivers:\n  local: { type: filesystem, root: /srv/archive }\n';
