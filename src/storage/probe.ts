import { randomBytes } from 'node:crypto';
import { DepotError } from '../contract';
import type { ProbeReport } from './driver';
import { ignoreFailure } from '../support/ignore';

export type ProbeTimings = Omit<ProbeReport, 'writeOnce'>;

export interface ProbeSteps {
  write(bytes: Buffer): Promise<void>;
  read(): Promise<Buffer>;
  remove(): Promise<void>;
}

/** A probe name that no archive key can have (keys start with a year). */
export function probeName(): string {
  return `probe-${Date.now()}-${randomBytes(6).toString('hex')}`;
}

/**
 * The connection check every driver runs against its backend: write a probe,
 * read it back, compare, delete it (also when the read fails), and time each step.
 */
export async function runProbe(steps: ProbeSteps): Promise<ProbeTimings> {
  const bytes = randomBytes(4096);
  let t = performance.now();
  try {
    await steps.write(bytes);
  } catch (error) {
    await ignoreFailure(steps.remove(), 'a half-written probe must not stay behind; the write failure is what is reported');
    throw error;
  }
  const writeMs = performance.now() - t;
  let readMs: number;
  try {
    t = performance.now();
    const back = await steps.read();
    readMs = performance.now() - t;
    if (!back.equals(bytes)) throw new DepotError('integrity', 'the probe read back differs from what was written');
  } finally {
    t = performance.now();
    await steps.remove();
  }
  const deleteMs = performance.now() - t;
  return { writeMs: round(writeMs), readMs: round(readMs), deleteMs: round(deleteMs) };
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
