import {
  DeleteBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  ListMultipartUploadsCommand,
  paginateListObjectsV2,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import type { StorageDriver } from '../../src/storage/driver';
import { S3Driver } from '../../src/storage/drivers/s3/driver';
import { silentLogger } from '../../src/support/logging';
import { S3Server, s3rverSettings, startS3Server, uniqueBucket } from '../helpers/s3-server';
import { ConformanceHarness, describeConformance } from './suite';

/**
 * The conformance suite against s3rver, a real S3-protocol server: one fresh
 * bucket per driver, and a non-empty prefix so that anything written outside
 * it shows up in visibleEntries (which lists the whole bucket).
 */
const PREFIX = 'archive/';

let server: S3Server;
let raw: S3Client;

beforeAll(async () => {
  server = await startS3Server();
  raw = server.client();
});

afterAll(async () => {
  await server?.destroy();
});

async function allKeys(bucket: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const page of paginateListObjectsV2({ client: raw }, { Bucket: bucket })) {
    for (const object of page.Contents ?? []) if (object.Key) keys.push(object.Key);
  }
  return keys.sort();
}

function s3Harness(): ConformanceHarness {
  const buckets = new Map<StorageDriver, string>();
  const bucketOf = (driver: StorageDriver): string => {
    const bucket = buckets.get(driver);
    if (!bucket) throw new Error('driver was not made by this harness');
    return bucket;
  };

  return {
    name: 's3',

    async makeDriver() {
      const bucket = uniqueBucket('conformance');
      await server.createBucket(bucket);
      const driver = new S3Driver('conformance', s3rverSettings(server, bucket, { prefix: PREFIX }), silentLogger());
      buckets.set(driver, bucket);
      return driver;
    },

    async tamper(driver, key) {
      // Rewrite the object with its first byte flipped, keeping its metadata: only the bytes differ.
      const Bucket = bucketOf(driver);
      const Key = PREFIX + key;
      const object = await raw.send(new GetObjectCommand({ Bucket, Key }));
      const bytes = Buffer.from((await object.Body?.transformToByteArray()) ?? []);
      if (bytes.length === 0) bytes.writeUInt8(0x2a);
      else bytes[0] ^= 0xff;
      await raw.send(new PutObjectCommand({ Bucket, Key, Body: bytes, Metadata: object.Metadata, ContentType: object.ContentType }));
    },

    async plant(driver, key, bytes) {
      await raw.send(new PutObjectCommand({ Bucket: bucketOf(driver), Key: PREFIX + key, Body: bytes }));
    },

    async visibleEntries(driver) {
      // Every object in the bucket; multipart uploads in progress are not objects (stagingEntries lists them).
      return allKeys(bucketOf(driver));
    },

    async stagingEntries(driver) {
      const uploads = await raw.send(new ListMultipartUploadsCommand({ Bucket: bucketOf(driver) }));
      return (uploads.Uploads ?? []).map((u) => `${u.Key} (upload ${u.UploadId})`);
    },

    async breakBackend(driver) {
      // The bucket disappears.
      const Bucket = bucketOf(driver);
      for (const Key of await allKeys(Bucket)) await raw.send(new DeleteObjectCommand({ Bucket, Key }));
      await raw.send(new DeleteBucketCommand({ Bucket }));
    },

    async cleanup() {
      buckets.clear(); // the server's data directory goes with the server
    },
  };
}

describe('s3 driver (s3rver): conformance', () => {
  describeConformance(() => s3Harness());
});
