// Ids made here rather than by Prisma, for rows a raw statement inserts in bulk: UUIDv7 as Prisma
// makes them (@default(uuid(7))), so they sort by creation like the rows Prisma inserts. Within one
// millisecond a counter keeps them in the order they were made.
import { randomBytes } from 'node:crypto';

let lastMs = 0;
let sequence = 0;

export function uuidV7(): string {
  let ms = Date.now();
  if (ms <= lastMs) {
    ms = lastMs;
    sequence++;
    // 12 bits of counter per millisecond; past them, the next millisecond is borrowed.
    if (sequence > 0xfff) {
      ms = ++lastMs;
      sequence = 0;
    }
  } else {
    lastMs = ms;
    sequence = 0;
  }
  const bytes = randomBytes(16);
  bytes.writeUIntBE(ms, 0, 6);
  bytes[6] = 0x70 | (sequence >> 8);
  bytes[7] = sequence & 0xff;
  bytes[8] = 0x80 | ((bytes[8] as number) & 0x3f);
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
