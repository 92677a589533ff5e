import type { S3Client } from '@aws-sdk/client-s3';
import { DepotError } from '../../../contract';

/** What one running multipart store wants to know about its own requests. */
export interface GateHooks {
  /** Awaited before CompleteMultipartUpload is sent; if it throws, Complete is not sent and the upload stays invisible. */
  beforeComplete(): Promise<void>;
  /** A part failed for good (after the SDK's retries): the store stops feeding the other parts. */
  onPartFailed(error: unknown): void;
}

/**
 * lib-storage's Upload sends CompleteMultipartUpload as soon as its last part is
 * uploaded. This middleware holds that request until the store says the body
 * ended cleanly and its manifest is published, so the decision to publish stays
 * with the driver rather than with lib-storage's internals; it is matched by the
 * object key, which one process stores at most once at a time.
 */
export class CompleteGate {
  private readonly hooks = new Map<string, GateHooks>();

  constructor(client: S3Client) {
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const key = (args.input as { Key?: unknown }).Key;
        const hooks = typeof key === 'string' ? this.hooks.get(key) : undefined;
        if (!hooks) return next(args);
        if (context.commandName === 'CompleteMultipartUploadCommand') await hooks.beforeComplete();
        try {
          return await next(args);
        } catch (error) {
          if (context.commandName === 'UploadPartCommand') hooks.onPartFailed(error);
          throw error;
        }
      },
      { step: 'initialize', name: 'depotCompleteGate' },
    );
  }

  /** Registers a store of `key`; the returned function unregisters it. */
  hold(key: string, hooks: GateHooks): () => void {
    if (this.hooks.has(key)) {
      throw new DepotError('unavailable', `another store of ${key} is running in this process`);
    }
    this.hooks.set(key, hooks);
    return () => {
      if (this.hooks.get(key) === hooks) this.hooks.delete(key);
    };
  }
}
