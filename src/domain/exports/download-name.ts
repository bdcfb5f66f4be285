// The name an export's file is saved under: `<job name>-<short id>.<format>`, sent as the
// Content-Disposition of its download URL so browsers save "Summer promo-1f2e3d4c.mp4" rather
// than "output.mp4". Names come from users, so only letters, digits, spaces, dots, dashes and
// underscores are kept: nothing that could reach outside a folder, hide a file or break the header.
import type { ObjectStore, PresignedUrl } from '../../ports.ts';

export interface PresignOptions {
  /** The Content-Disposition the download answers with. */
  contentDisposition?: string;
}

/** An object store whose download URLs can name the file they save as. */
export interface DownloadStore extends ObjectStore {
  presignGet(key: string, expiresInSeconds: number, options?: PresignOptions): Promise<PresignedUrl>;
}

const MAX_NAME_LENGTH = 80;
// The tail of the id: a UUIDv7 starts with its timestamp, which ids made within a minute share.
const SHORT_ID_LENGTH = 8;
const FALLBACK_NAME = 'export';

function tidy(name: string, unsafe: RegExp): string {
  const kept = name.replace(unsafe, ' ').replace(/\s+/g, ' ').replace(/^[\s.]+|[\s.]+$/g, '');
  return [...kept].slice(0, MAX_NAME_LENGTH).join('').trim() || FALLBACK_NAME;
}

/**
 * `attachment; filename="<name>-<short id>.<format>"`, and when the name is not plain ASCII also
 * `filename*=UTF-8''...` with the full name (RFC 6266, RFC 8187), which browsers prefer.
 */
export function downloadDisposition(name: string, id: string, format: string): string {
  const suffix = `-${id.replaceAll('-', '').slice(-SHORT_ID_LENGTH)}.${format}`;
  const full = tidy(name.normalize('NFC'), /[^\p{L}\p{M}\p{N} ._-]+/gu);
  // Accents dropped (é -> e) rather than the letter, for clients that only read `filename`.
  const ascii = tidy(full.normalize('NFKD').replace(/\p{M}/gu, ''), /[^A-Za-z0-9 ._-]+/g);
  const plain = `attachment; filename="${ascii}${suffix}"`;
  // encodeURIComponent leaves only RFC 8187 attr-chars of these names unescaped.
  return ascii === full ? plain : `${plain}; filename*=UTF-8''${encodeURIComponent(full + suffix)}`;
}
