/**
 * The conformance suite cannot pass vacuously: every check fails against at
 * least one deliberately broken driver, while a pass-through wrapper (the base
 * of every broken driver) passes them all — so each failure comes from the one
 * behaviour that driver breaks.
 */
import { DepotError } from '../../src/contract';
import { filesystemHarness } from '../helpers/filesystem-harness';
import type { FilesystemDriver } from '../../src/storage/drivers/filesystem';
import { brokenDrivers, ChecksKeyBeforeUpload, PassThroughDriver } from './broken-drivers';
import { ConformanceCheck, conformanceChecks, ConformanceFailure, runCheck } from './suite';

/** Check name → the broken drivers it must fail against. Adding a check without an entry fails this file. */
const caughtBy: Record<string, string[]> = {
  'round trip: 0 B': ['drops-empty-archives'],
  'round trip: 1 B': ['truncates-on-retrieve'],
  'round trip: 5 MiB': ['truncates-on-retrieve'],
  'round trip: 100 MiB': ['truncates-large-archives'],
  'manifest fields round trip': ['loses-metadata', 'drops-retention'],
  'same name twice: two keys, both intact': ['retrieve-latest-by-name'],
  're-store of the same bytes is idempotent': ['overwrites-existing'],
  're-store of other bytes is a conflict; the original stays intact': ['overwrites-existing'],
  'a retry whose key holds other bytes than its manifest is a conflict, never an idempotent success': ['retrieves-from-cache'],
  "another writer's object at depot's key (no manifest): conflict; never replaced, adopted or deleted": ['replaces-foreign-objects'],
  'wrong sha256: integrity, nothing visible': ['writes-final-in-place', 'ignores-stream-errors'],
  'wrong size (too small or too big): integrity, nothing visible': ['writes-final-in-place', 'ignores-stream-errors'],
  'tampered archive: reading it fails with integrity': ['trusts-current-bytes'],
  'missing key: retrieve and delete are not_found, stat is null': ['missing-as-empty', 'missing-as-outage'],
  'delete removes the archive and its manifest': ['delete-noop', 'delete-leaves-manifest'],
  'retention: delete refused while retainUntil is ahead, allowed after it': ['drops-retention'],
  'list: prefix filtering returns exactly the stored manifests': ['lists-nothing', 'lists-duplicates', 'list-ignores-prefix', 'list-hides-dot-entries'],
  'check: ok with timings, leaves no probe behind': ['check-leaves-probe', 'check-without-backend', 'check-negative-timings'],
  'space: figures present are finite, non-negative and consistent': ['space-negative', 'space-free-beyond-total', 'space-missing'],
  'Unicode names round trip exactly (NFC and NFD are two names)': ['normalizes-names'],
  '20 concurrent stores do not interfere': ['shared-staging'],
  'aborted store: rejects and leaves nothing': ['ignores-abort', 'writes-final-in-place', 'leaks-staging'],
  'source failing mid-way: store rejects, nothing visible': ['ignores-stream-errors', 'writes-final-in-place', 'leaks-staging'],
  'a local source file (16 MiB): stored intact; again: idempotent; other bytes: conflict': ['file-copy-truncates'],
  'a local source file that is not what the task declares (sha256, size): integrity, nothing visible': ['file-copy-ignores-expectations'],
  'an archive retrieved into a local file (16 MiB): the file holds it; tampered: integrity': ['file-retrieve-trusts-manifest', 'file-retrieve-truncates'],
};

const TIMEOUT_MS = 30_000;
const timeoutOf = (check: ConformanceCheck) => check.timeoutMs ?? TIMEOUT_MS;

/** A check failed by its own verdict (an expect, a ConformanceFailure, or a depot error where success was due), not by crashing. */
function isVerdict(error: unknown): boolean {
  const isJestAssertion = error instanceof Error && 'matcherResult' in error;
  return isJestAssertion || error instanceof ConformanceFailure || error instanceof DepotError;
}

describe('conformance suite: coverage of its meta-test', () => {
  test('every check has at least one broken driver that must fail it', () => {
    expect(Object.keys(caughtBy).sort()).toEqual(conformanceChecks.map((c) => c.name).sort());
    for (const names of Object.values(caughtBy)) expect(names.length).toBeGreaterThan(0);
  });

  test('broken drivers are uniquely named, all exist and all are used', () => {
    const known = brokenDrivers.map((b) => b.name);
    expect(new Set(known).size).toBe(known.length);
    const used = new Set(Object.values(caughtBy).flat());
    expect([...used].filter((name) => !known.includes(name))).toEqual([]);
    expect(known.filter((name) => !used.has(name))).toEqual([]);
  });
});

/** Correct drivers: the plain wrapper every broken driver builds on, and a legitimate variation the suite must not reject. */
const correctDrivers = [
  { name: 'pass-through', wrap: (driver: FilesystemDriver, root: string) => new PassThroughDriver(driver, root) },
  { name: 'checks-key-before-upload', wrap: (driver: FilesystemDriver, root: string) => new ChecksKeyBeforeUpload(driver, root) },
];

describe.each(correctDrivers)('conformance suite: the correct driver $name passes every check', ({ name, wrap }) => {
  for (const check of conformanceChecks) {
    test(check.name, () => runCheck(check, () => filesystemHarness({ name, wrap })), timeoutOf(check));
  }
});

describe('conformance suite: every check fails against the drivers that break it', () => {
  for (const check of conformanceChecks) {
    for (const name of caughtBy[check.name] ?? []) {
      test(
        `${check.name} ✗ ${name}`,
        async () => {
          const broken = brokenDrivers.find((b) => b.name === name);
          if (!broken) throw new Error(`no broken driver '${name}'`);
          const run = runCheck(check, () => filesystemHarness({ name, wrap: broken.wrap }));
          await expect(run).rejects.toThrow();
          expect(isVerdict(await run.catch((error: unknown) => error))).toBe(true);
        },
        timeoutOf(check),
      );
    }
  }
});
