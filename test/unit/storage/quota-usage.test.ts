import { QuotaUsage } from '../../../src/storage/quota-usage';

describe('QuotaUsage (space against quotaBytes, for backends without a free-space figure)', () => {
  test('without a quota: nothing reported, nothing counted', async () => {
    const measure = jest.fn(() => Promise.resolve(1));
    expect(await new QuotaUsage(undefined, 60_000, measure).space()).toEqual({});
    expect(measure).not.toHaveBeenCalled();
  });

  test('used counted once per ttl; free never below zero', async () => {
    let used = 400;
    const measure = jest.fn(() => Promise.resolve(used));
    const usage = new QuotaUsage(1000, 60_000, measure);
    expect(await usage.space()).toEqual({ totalBytes: 1000, usedBytes: 400, freeBytes: 600 });
    used = 1500;
    expect(await usage.space()).toEqual({ totalBytes: 1000, usedBytes: 400, freeBytes: 600 });
    expect(measure).toHaveBeenCalledTimes(1);
    const expired = new QuotaUsage(1000, -1, measure);
    expect(await expired.space()).toEqual({ totalBytes: 1000, usedBytes: 1500, freeBytes: 0 });
  });

  test('a failed count is not kept: the next call counts again', async () => {
    const measure = jest.fn<Promise<number>, []>().mockRejectedValueOnce(new Error('listing failed')).mockResolvedValueOnce(10);
    const usage = new QuotaUsage(100, 60_000, measure);
    await expect(usage.space()).rejects.toThrow('listing failed');
    expect(await usage.space()).toEqual({ totalBytes: 100, usedBytes: 10, freeBytes: 90 });
    expect(measure).toHaveBeenCalledTimes(2);
  });
});
