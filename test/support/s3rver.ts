import { rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

// s3rver ships no types; this is the part of its API used here.
interface S3rverInstance {
  run(): Promise<AddressInfo>;
  close(): Promise<void>;
  httpServer: { closeAllConnections(): void };
}
type S3rverConstructor = new (options: {
  address: string;
  port: number;
  silent: boolean;
  directory: string;
  configureBuckets: { name: string }[];
}) => S3rverInstance;

const S3rver = createRequire(import.meta.url)('s3rver') as S3rverConstructor;

export interface S3rverHandle {
  config: { endpoint: string; bucket: string; accessKeyId: string; secretAccessKey: string; region: string };
  stop(): Promise<void>;
}

/** A real S3 HTTP server on a free loopback port, storing into a fresh temporary directory. */
export async function startS3rver(): Promise<S3rverHandle> {
  const directory = await mkdtemp(path.join(tmpdir(), 'orchestrator-s3rver-'));
  const bucket = 'orchestrator-test';
  const server = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory,
    configureBuckets: [{ name: bucket }],
  });
  let address: AddressInfo;
  try {
    address = await server.run();
  } catch (error) {
    await rm(directory, { recursive: true, force: true });
    throw error;
  }
  // Vitest exits without teardown on Ctrl-C (SIGINT) and SIGTERM; the folder must not outlive it.
  const removeNow = () => rmSync(directory, { recursive: true, force: true });
  process.once('exit', removeNow);
  return {
    config: {
      endpoint: `http://127.0.0.1:${address.port}`,
      bucket,
      // The only access key s3rver knows; it refuses others but does not verify SigV4 signatures.
      accessKeyId: 'S3RVER',
      secretAccessKey: 'S3RVER',
      region: 'us-east-1',
    },
    async stop() {
      process.off('exit', removeNow);
      const closed = server.close();
      // Clients' keep-alive sockets would otherwise hold the server open.
      server.httpServer.closeAllConnections();
      await closed;
      await rm(directory, { recursive: true, force: true });
    },
  };
}
