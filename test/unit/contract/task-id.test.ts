import { newTaskId, taskIdProblem, taskIdTime, taskIdTimeProblem } from '../../../src/contract';

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('newTaskId (UUIDv7, RFC 9562)', () => {
  test('has the UUIDv7 layout: lowercase hex, version 7, RFC 4122 variant', () => {
    for (let i = 0; i < 200; i++) expect(newTaskId()).toMatch(UUID_V7);
  });

  test('is a valid taskId under the contract rule', () => {
    expect(taskIdProblem(newTaskId())).toBeNull();
  });

  test('carries the given milliseconds in its first 48 bits', () => {
    const now = Date.UTC(2025, 6, 14, 9, 26, 53, 589);
    const id = newTaskId(now);
    expect(parseInt(id.replace(/-/g, '').slice(0, 12), 16)).toBe(now);
  });

  test('defaults to the current time', () => {
    const before = Date.now();
    const id = newTaskId();
    const after = Date.now();
    const t = taskIdTime(id);
    expect(t).not.toBeNull();
    expect(t!.getTime()).toBeGreaterThanOrEqual(before);
    expect(t!.getTime()).toBeLessThanOrEqual(after);
  });

  test('two ids of the same millisecond differ (random bits)', () => {
    const now = Date.UTC(2024, 0, 1);
    const ids = new Set(Array.from({ length: 1000 }, () => newTaskId(now)));
    expect(ids.size).toBe(1000);
  });

  test('sort by creation time as strings', () => {
    const times = [0, 1, 255, 256, Date.UTC(2001, 0, 1), Date.UTC(2024, 5, 1), Date.UTC(2024, 5, 1) + 1, 2 ** 48 - 1];
    const ids = times.map((t) => newTaskId(t));
    expect([...ids].sort()).toEqual(ids);
  });
});

describe('taskIdTime', () => {
  test.each([0, 1, Date.UTC(1970, 0, 2), Date.UTC(2024, 1, 29, 23, 59, 59, 999), Date.UTC(2099, 11, 31), 2 ** 48 - 1])('round-trips %d ms', (ms) => {
    expect(taskIdTime(newTaskId(ms))?.getTime()).toBe(ms);
  });

  test('reads an uppercase UUIDv7 too', () => {
    const ms = Date.UTC(2024, 6, 1);
    expect(taskIdTime(newTaskId(ms).toUpperCase())?.getTime()).toBe(ms);
  });

  test.each([
    ['a producer-chosen id', 'moodle-course-12-backup'],
    ['a UUIDv4', '9b2f8c1e-4d3a-4f6b-8e2c-1a2b3c4d5e6f'],
    ['a UUIDv7 with the wrong variant', '0190a3e4-5b6c-7d8e-cf01-23456789abcd'],
    ['a UUIDv7 without dashes', '0190a3e45b6c7d8e9f0123456789abcd'],
    ['a UUIDv7 with a suffix', '0190a3e4-5b6c-7d8e-9f01-23456789abcd-x'],
    ['empty', ''],
  ])('is null for %s', (_label, id) => {
    expect(taskIdTime(id)).toBeNull();
  });
});

describe('taskIdTimeProblem: a UUIDv7 must name a day the YYYY/MM/DD key can write', () => {
  const lastMoment = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

  test.each([0, Date.UTC(2024, 6, 1), lastMoment])('accepts a UUIDv7 of %d ms', (ms) => {
    expect(taskIdTimeProblem(newTaskId(ms))).toBeNull();
  });

  test.each([lastMoment + 1, Date.UTC(10000, 5, 1), 2 ** 48 - 1])('refuses a UUIDv7 of %d ms (beyond the year 9999)', (ms) => {
    expect(taskIdTimeProblem(newTaskId(ms))).toMatch(/year 10000/);
    expect(taskIdTimeProblem(newTaskId(ms).toUpperCase())).not.toBeNull();
  });

  test('other taskIds carry no date and pass', () => {
    expect(taskIdTimeProblem('moodle-course-12-backup')).toBeNull();
    expect(taskIdTimeProblem('ffffffff-ffff-4fff-bfff-ffffffffffff')).toBeNull();
  });
});
