import * as transport from '@nats-io/transport-node';
import type * as core from '@nats-io/nats-core';

/**
 * The NATS client for Node. @nats-io/transport-node ships the client API of
 * @nats-io/nats-core re-exported through the subpath
 * `@nats-io/nats-core/internal`, which this project's module resolution
 * (node10) cannot follow, so its declarations read as `any`: the values are
 * taken from transport-node as it ships them, typed by nats-core's own
 * declarations (the package transport-node depends on, at its exact version).
 */
export type NatsConnection = core.NatsConnection;
export type NatsConnectOptions = core.ConnectionOptions;

export const connect = transport.connect as (options: NatsConnectOptions) => Promise<NatsConnection>;
export const credsAuthenticator = (transport as unknown as typeof core).credsAuthenticator;
