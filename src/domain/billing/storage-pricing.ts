// How keeping an export longer is priced. Pure, like render pricing: the same export and days
// always get the same quote. Amounts are integer minor units (cents).
//
// Price = STORAGE_RATE_PER_GB_DAY x started gigabytes x days, at least MINIMUM_EXTENSION_CHARGE.
// - Stored bytes are the main file's plus every additional file's; thumbnails are not counted.
// - A gigabyte is 1,000,000,000 bytes and every started one counts, so 1 byte and 1 GB cost the
//   same and an empty export is billed as one gigabyte.
// - Days are whole days from 1 to 365, added to the later of now and the current auto-delete date.
// - The minimum keeps a short extension of a small export from costing less than the charge's
//   own handling.

export const MIN_EXTENSION_DAYS = 1;
export const MAX_EXTENSION_DAYS = 365;
export const BYTES_PER_GB = 1_000_000_000n;
export const STORAGE_RATE_PER_GB_DAY = 1n;
export const MINIMUM_EXTENSION_CHARGE = 25n;

export interface ExtensionQuote {
  billedGb: bigint;
  chargeMinor: bigint;
}

export function billedGigabytes(storedBytes: bigint): bigint {
  const started = (storedBytes + BYTES_PER_GB - 1n) / BYTES_PER_GB;
  return started > 1n ? started : 1n;
}

export function quoteExtension(storedBytes: bigint, days: number): ExtensionQuote {
  const billedGb = billedGigabytes(storedBytes);
  const price = STORAGE_RATE_PER_GB_DAY * billedGb * BigInt(days);
  return { billedGb, chargeMinor: price > MINIMUM_EXTENSION_CHARGE ? price : MINIMUM_EXTENSION_CHARGE };
}
