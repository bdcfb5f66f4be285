// Exports as the encode step leaves them: real objects in the store and the rows that point at
// them. The export tests write both directly: rendering and encoding a job first would take far
// longer and test the encode step again, which the job tests cover.
import { randomBytes, randomUUID } from 'node:crypto';
import type { ObjectStore } from '../../src/ports.ts';
import type { TestApp } from './app.ts';

const DAY_MS = 24 * 3600 * 1000;

export interface StoredExport {
  id: string;
  userId: string;
  /** Every object of the export, key -> bytes: main file, image, additional files and thumbnails. */
  objects: Map<string, Buffer>;
  mainKey: string;
  gifKey: string;
  webmKey: string;
}

export interface ExportOptions {
  autoDeleteDate?: Date;
  produceDate?: Date;
  /** What the rows say the files weigh (the stored test objects are small). */
  mainSizeBytes?: bigint;
  gifSizeBytes?: bigint;
  /** The job the export came from, and its saved project (a made-up one when not given). */
  renderJobId?: string;
  savedProjectId?: string;
}

/** An mp4 main file with a poster image, a gif with a thumbnail and a webm without one. */
export async function createStoredExport(t: TestApp, userId: string, options: ExportOptions = {}): Promise<StoredExport> {
  const prefix = `exports/${userId}/${randomUUID()}`;
  const keys = {
    main: `${prefix}/video.mp4`,
    image: `${prefix}/poster.jpg`,
    gif: `${prefix}/video.gif`,
    gifThumbnail: `${prefix}/video-gif.jpg`,
    webm: `${prefix}/video.webm`,
  };
  const objects = new Map(Object.values(keys).map((key) => [key, randomBytes(2048 + Math.floor(Math.random() * 2048))]));
  const store = t.app.services.store;
  await Promise.all([...objects].map(([key, bytes]) => store.put(key, bytes, 'application/octet-stream')));
  const created = await t.app.services.db.prisma.export.create({
    data: {
      userId,
      renderJobId: options.renderJobId ?? null,
      savedProjectId: options.savedProjectId ?? randomUUID(),
      path: keys.main,
      image: keys.image,
      sizeBytes: options.mainSizeBytes ?? BigInt(objects.get(keys.main)!.length),
      durationSec: 12.5,
      width: 1920,
      height: 1080,
      fileExtension: 'mp4',
      fileType: 'video',
      renderQuality: 'High',
      createType: 'render',
      produceDate: options.produceDate ?? new Date(),
      autoDeleteDate: options.autoDeleteDate ?? new Date(Date.now() + 30 * DAY_MS),
      files: {
        create: [
          {
            fileType: 'gif',
            path: keys.gif,
            thumbnail: keys.gifThumbnail,
            sizeBytes: options.gifSizeBytes ?? BigInt(objects.get(keys.gif)!.length),
          },
          { fileType: 'webm', path: keys.webm, sizeBytes: BigInt(objects.get(keys.webm)!.length) },
        ],
      },
    },
  });
  return { id: created.id, userId, objects, mainKey: keys.main, gifKey: keys.gif, webmKey: keys.webm };
}

/** The row of an export without stored objects: enough to list, page and resolve it. */
function exportRow(userId: string, overrides: { path?: string; produceDate?: Date } = {}) {
  return {
    userId,
    savedProjectId: randomUUID(),
    path: overrides.path ?? `exports/${userId}/${randomUUID()}.mp4`,
    durationSec: 10,
    width: 1280,
    height: 720,
    fileExtension: 'mp4',
    fileType: 'video',
    renderQuality: 'Medium' as const,
    createType: 'render',
    produceDate: overrides.produceDate ?? new Date(),
    autoDeleteDate: new Date(Date.now() + DAY_MS),
  };
}

/** `count` exports of the user without stored objects (rows alone list, page and resolve); their ids. */
export async function createExportRows(
  t: TestApp,
  userId: string,
  count: number,
  overridesOf: (index: number) => { path?: string; produceDate?: Date } = () => ({}),
): Promise<string[]> {
  const rows = await t.app.services.db.prisma.export.createManyAndReturn({
    data: Array.from({ length: count }, (_, index) => exportRow(userId, overridesOf(index))),
    select: { id: true },
  });
  return rows.map((row) => row.id);
}

export async function existingObjects(store: ObjectStore, exported: StoredExport): Promise<string[]> {
  const keys = [...exported.objects.keys()];
  const present = await Promise.all(keys.map((key) => store.exists(key)));
  return keys.filter((_, index) => present[index]);
}

export async function rowsOf(t: TestApp, exportId: string) {
  const prisma = t.app.services.db.prisma;
  const [exports, files] = await Promise.all([
    prisma.export.count({ where: { id: exportId } }),
    prisma.exportFile.count({ where: { exportId } }),
  ]);
  return { exports, files };
}

export const daysFrom = (date: Date, days: number) => new Date(date.getTime() + days * DAY_MS);
