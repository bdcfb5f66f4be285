import {
  BucketAlreadyExists,
  BucketAlreadyOwnedByYou,
  CreateBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  NoSuchKey,
  NotFound,
  PutObjectCommand,
  S3Client,
  type BucketLocationConstraint,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { Readable } from 'node:stream';
import type { S3Config } from '../../config.ts';
import { ValidationError } from '../../domain/errors.ts';
import type { DownloadStore } from '../../domain/exports/download-name.ts';

export interface S3ObjectStoreOptions {
  /**
   * The endpoint that browsers reach when it differs from the one this service uses (MinIO as
   * `minio:9000` inside docker-compose, `localhost:9000` outside). The host is part of what a
   * presigned URL signs, so those URLs are signed for this endpoint.
   */
  publicEndpoint?: string;
}

const DEFAULT_CONTENT_TYPE = 'application/octet-stream';
// The longest a SigV4 presigned URL may live.
const MAX_EXPIRES_IN_SECONDS = 7 * 24 * 3600;

export async function createS3ObjectStore(config: S3Config, options: S3ObjectStoreOptions = {}): Promise<DownloadStore> {
  const clientFor = (endpoint: string) =>
    new S3Client({
      endpoint,
      region: config.region,
      forcePathStyle: true,
      credentials: { accessKeyId: config.accessKeyId, secretAccessKey: config.secretAccessKey },
    });
  const client = clientFor(config.endpoint);
  const signer = options.publicEndpoint === undefined ? client : clientFor(options.publicEndpoint);
  const Bucket = config.bucket;
  const destroy = () => {
    client.destroy();
    if (signer !== client) signer.destroy();
  };

  try {
    await ensureBucket(client, config);
  } catch (error) {
    destroy();
    throw error;
  }

  return {
    async put(key, body, contentType) {
      await client.send(new PutObjectCommand({ Bucket, Key: key, Body: body, ContentType: contentType }));
    },

    async get(key) {
      try {
        const response = await client.send(new GetObjectCommand({ Bucket, Key: key }));
        if (!(response.Body instanceof Readable)) throw new Error(`S3 returned no readable body for ${key}`);
        return {
          body: response.Body,
          contentType: response.ContentType ?? DEFAULT_CONTENT_TYPE,
          size: response.ContentLength ?? 0,
        };
      } catch (error) {
        if (error instanceof NoSuchKey) return null;
        throw error;
      }
    },

    async delete(key) {
      await client.send(new DeleteObjectCommand({ Bucket, Key: key }));
    },

    async exists(key) {
      try {
        await client.send(new HeadObjectCommand({ Bucket, Key: key }));
        return true;
      } catch (error) {
        if (error instanceof NotFound) return false;
        throw error;
      }
    },

    async presignGet(key, expiresInSeconds, { contentDisposition } = {}) {
      if (!Number.isInteger(expiresInSeconds) || expiresInSeconds < 1 || expiresInSeconds > MAX_EXPIRES_IN_SECONDS) {
        throw new ValidationError('Invalid expiry', [
          {
            path: 'expiresInSeconds',
            message: `must be a whole number of seconds from 1 to ${MAX_EXPIRES_IN_SECONDS}`,
          },
        ]);
      }
      const signedAt = new Date();
      // Signed into the URL (response-content-disposition), so the name cannot be changed.
      const command = new GetObjectCommand({ Bucket, Key: key, ResponseContentDisposition: contentDisposition });
      const url = await getSignedUrl(signer, command, {
        expiresIn: expiresInSeconds,
        signingDate: signedAt,
      });
      return { url, expiresAt: new Date(signedAt.getTime() + expiresInSeconds * 1000) };
    },

    async ping() {
      await client.send(new HeadBucketCommand({ Bucket }));
    },

    async close() {
      destroy();
    },
  };
}

/** MinIO's init container creates the bucket too, and so may another replica starting alongside. */
async function ensureBucket(client: S3Client, config: S3Config): Promise<void> {
  try {
    await client.send(new HeadBucketCommand({ Bucket: config.bucket }));
    return;
  } catch (error) {
    if (!(error instanceof NotFound)) throw error;
  }
  try {
    await client.send(
      new CreateBucketCommand({
        Bucket: config.bucket,
        // us-east-1 is the one region that must not be named as a location constraint. The SDK's
        // list of regions is AWS's own; S3-compatible servers accept theirs too.
        ...(config.region === 'us-east-1'
          ? {}
          : { CreateBucketConfiguration: { LocationConstraint: config.region as BucketLocationConstraint } }),
      }),
    );
  } catch (error) {
    if (!(error instanceof BucketAlreadyOwnedByYou || error instanceof BucketAlreadyExists)) throw error;
  }
}
