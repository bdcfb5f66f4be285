// Stand-ins for what After Effects would produce. They live in memory only: the benchmark runs
// thousands of nodes in one process and must not touch the disk.
import { createHash } from 'node:crypto';
import { crc32, deflateSync } from 'node:zlib';

/** A valid 1x1 PNG, small enough to ride in every first frame report as the job's preview. */
export const PREVIEW_PNG_B64 =
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=';

const PREVIEW_PNG = Buffer.from(PREVIEW_PNG_B64, 'base64');

/**
 * The size of one rendered frame: the preview image padded the way real frames vary. Nodes report
 * it without making the frame, which nobody reads.
 */
export function placeholderFrameSize(padding: number): number {
  return PREVIEW_PNG.length + padding;
}

/** The "encoded video" uploaded for one format: a recognisable header, sized by the frame count. */
export function placeholderOutput(jobId: string, format: string, totalFrames: number): Buffer {
  const header = Buffer.from(`FLATRENDER-AGENT-SIM ${format} ${jobId} ${totalFrames} frames\n`, 'utf8');
  const size = Math.min(64 * 1024, header.length + 1024 + totalFrames * 16);
  const output = Buffer.alloc(size, 0x2e);
  header.copy(output);
  return output;
}

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

function pngChunk(type: string, data: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const typed = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(typed));
  return Buffer.concat([length, typed, crc]);
}

/**
 * A rendered still: a real PNG (8-bit RGB) of the given size, a left-to-right blend between two
 * colours drawn from `seed`, so stills of different frames differ and the same frame looks the same.
 */
export function placeholderStill(seed: string, { width, height }: { width: number; height: number }): Buffer {
  const [r1 = 0, g1 = 0, b1 = 0, r2 = 0, g2 = 0, b2 = 0] = createHash('md5').update(seed).digest();
  // Each row: filter type 0 (none), then the pixels.
  const row = Buffer.alloc(1 + width * 3);
  for (let x = 0; x < width; x++) {
    const share = width > 1 ? x / (width - 1) : 0;
    row[1 + x * 3] = Math.round(r1 + (r2 - r1) * share);
    row[2 + x * 3] = Math.round(g1 + (g2 - g1) * share);
    row[3 + x * 3] = Math.round(b1 + (b2 - b1) * share);
  }
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = 8; // bits per channel
  header[9] = 2; // RGB
  return Buffer.concat([
    PNG_SIGNATURE,
    pngChunk('IHDR', header),
    pngChunk('IDAT', deflateSync(Buffer.concat(Array.from({ length: height }, () => row)))),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

export function replicaOf(jobId: string, lease: string): { path: string; md5: string } {
  return {
    path: `replicas/${jobId}/replica.aep`,
    md5: createHash('md5').update(`${jobId}:${lease}`).digest('hex'),
  };
}

const RESOLUTIONS: Record<string, [number, number]> = {
  HD: [1280, 720],
  FullHD: [1920, 1080],
  TwoK: [2560, 1440],
  FourK: [3840, 2160],
};

export function dimensionsOf(resolution: unknown): { width: number; height: number } {
  const [width, height] = (typeof resolution === 'string' ? RESOLUTIONS[resolution] : undefined) ?? [1920, 1080];
  return { width, height };
}
