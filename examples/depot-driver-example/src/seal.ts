import { createHmac, timingSafeEqual } from 'node:crypto';
import { DepotError, Manifest, parseManifest, serializeManifest } from 'archive-depot/driver-api';

/**
 * The manifest file: the manifest's own bytes, and with a seal key their
 * HMAC-SHA256, so a manifest edited behind depot's back reads as `integrity`.
 */
interface Sidecar {
  manifest: string;
  seal?: string;
}

export function sealManifest(manifest: Manifest, sealKey: string | undefined): Buffer {
  const text = serializeManifest(manifest).toString('utf8');
  const sidecar: Sidecar = { manifest: text, seal: sealKey ? hmac(text, sealKey) : undefined };
  return Buffer.from(JSON.stringify(sidecar));
}

/** The manifest in a manifest file, checked against the seal and, when given, the key it must name (a listing takes the one it names). */
export function unsealManifest(bytes: Buffer, sealKey: string | undefined, key?: string): Manifest {
  let sidecar: Partial<Sidecar>;
  try {
    sidecar = JSON.parse(bytes.toString('utf8')) as Partial<Sidecar>;
  } catch {
    throw new DepotError('integrity', `the manifest file of ${key ?? 'an archive'} is not JSON`);
  }
  if (typeof sidecar.manifest !== 'string') throw new DepotError('integrity', `the manifest file of ${key ?? 'an archive'} holds no manifest`);
  if (sealKey) {
    const expected = Buffer.from(hmac(sidecar.manifest, sealKey), 'hex');
    const found = Buffer.from(typeof sidecar.seal === 'string' ? sidecar.seal : '', 'hex');
    if (found.length !== expected.length || !timingSafeEqual(found, expected))
      throw new DepotError('integrity', `the manifest of ${key ?? 'an archive'} is not sealed by this driver's key`);
  }
  return parseManifest(sidecar.manifest, key ?? keyNamedIn(sidecar.manifest));
}

function keyNamedIn(text: string): string {
  const named = (JSON.parse(text) as { key?: unknown }).key;
  return typeof named === 'string' ? named : '';
}

function hmac(text: string, sealKey: string): string {
  return createHmac('sha256', sealKey).update(text).digest('hex');
}
