import { describe, expect, it } from 'vitest';
import {
  BYTES_PER_GB,
  billedGigabytes,
  MAX_EXTENSION_DAYS,
  MINIMUM_EXTENSION_CHARGE,
  quoteExtension,
  STORAGE_RATE_PER_GB_DAY,
} from '../../src/domain/billing/storage-pricing.ts';

describe('storage pricing', () => {
  it('bills every started gigabyte, and an empty export as one', () => {
    expect(billedGigabytes(0n)).toBe(1n);
    expect(billedGigabytes(1n)).toBe(1n);
    expect(billedGigabytes(BYTES_PER_GB)).toBe(1n);
    expect(billedGigabytes(BYTES_PER_GB + 1n)).toBe(2n);
    expect(billedGigabytes(10n * BYTES_PER_GB - 1n)).toBe(10n);
  });

  it('charges the rate per gigabyte and day, never less than the minimum', () => {
    expect(STORAGE_RATE_PER_GB_DAY).toBe(1n);
    expect(MINIMUM_EXTENSION_CHARGE).toBe(25n);
    expect(quoteExtension(500_000_000n, 1)).toEqual({ billedGb: 1n, chargeMinor: 25n });
    expect(quoteExtension(500_000_000n, 25)).toEqual({ billedGb: 1n, chargeMinor: 25n });
    expect(quoteExtension(500_000_000n, 26)).toEqual({ billedGb: 1n, chargeMinor: 26n });
    expect(quoteExtension(3n * BYTES_PER_GB + 1n, 30)).toEqual({ billedGb: 4n, chargeMinor: 120n });
    expect(quoteExtension(50n * BYTES_PER_GB, MAX_EXTENSION_DAYS)).toEqual({ billedGb: 50n, chargeMinor: 18_250n });
  });

  it('never charges less for more days or more bytes', () => {
    for (const bytes of [0n, 999_999_999n, 1_000_000_001n, 7n * BYTES_PER_GB]) {
      let previous = 0n;
      for (let days = 1; days <= MAX_EXTENSION_DAYS; days++) {
        const { chargeMinor } = quoteExtension(bytes, days);
        expect(chargeMinor).toBeGreaterThanOrEqual(previous);
        expect(chargeMinor).toBeGreaterThanOrEqual(quoteExtension(bytes > 0n ? bytes - 1n : 0n, days).chargeMinor);
        previous = chargeMinor;
      }
    }
  });
});
