import { describe, expect, it } from 'vitest';
import {
  checkLimits,
  type Discount,
  type Entitlements,
  listPrice,
  type PriceRequest,
  quoteRender,
  refundOnCancel,
} from '../../src/domain/billing/pricing.ts';
import { ForbiddenError, ValidationError } from '../../src/domain/errors.ts';

const nobody: Entitlements = { plan: null, reseller: false };
const subscriber: Entitlements = { plan: 'pro', reseller: false };
const reseller: Entitlements = { plan: null, reseller: true };

/** HD High 30 fps 10 s, Cash: list price 50 (5 x 10 x 1 x 1 x 1). */
const request = (overrides: Partial<PriceRequest> = {}): PriceRequest => ({
  quality: 'High',
  resolution: 'HD',
  frameRate: 30,
  durationSec: 10,
  hasVoiceover: false,
  priceType: 'Cash',
  supportFlatrender: false,
  discount: null,
  ...overrides,
});

const percentOff = (percent: number): Discount => ({ code: `P${percent}`, percentOff: percent, amountOffMinor: null });
const amountOff = (amount: bigint): Discount => ({ code: `A${amount}`, percentOff: null, amountOffMinor: amount });

/** The ValidationError a call throws, or a failure if it throws something else or nothing. */
function validationErrorOf(run: () => unknown): ValidationError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(ValidationError);
    return error as ValidationError;
  }
  throw new Error('expected a ValidationError, nothing was thrown');
}

const paths = (error: ValidationError) => error.problems.map((problem) => problem.path).sort();

describe('listPrice', () => {
  it('is 5 cents a second at HD High 30 fps: 10 s costs 50', () => {
    expect(listPrice(request())).toBe(50n);
  });

  it('scales with resolution, quality and frame rate: FourK Lossless 60 fps 10 s costs 640', () => {
    // 5 x 10 s x 4 (FourK) x 1.6 (Lossless) x 60/30 = 640
    expect(listPrice(request({ quality: 'Lossless', resolution: 'FourK', frameRate: 60 }))).toBe(640n);
  });

  it('applies every factor: FullHD Full 25 fps 7 s is 54.6875, charged as 55', () => {
    // 5 x 7 x 1.5 x 1.25 x 25/30 = 54.6875
    expect(listPrice(request({ quality: 'Full', resolution: 'FullHD', frameRate: 25, durationSec: 7 }))).toBe(55n);
  });

  it('rounds a fraction of a cent up', () => {
    // 5 x 1.001 x 1 x 0.6 x 24/30 = 2.4024
    expect(listPrice(request({ quality: 'Low', frameRate: 24, durationSec: 1.001 }))).toBe(3n);
    // 5 x 3 x 2 x 0.8 x 24/30 = 19.2
    expect(listPrice(request({ quality: 'Medium', resolution: 'TwoK', frameRate: 24, durationSec: 3 }))).toBe(20n);
    // A whole number of cents stays as it is.
    expect(listPrice(request({ durationSec: 20 }))).toBe(100n);
  });

  it('does not round a whole number of cents up because of floating-point noise in the duration', () => {
    // 5 x 4.025 x 4 x 1 x 60/30 = 161 exactly; 4.025 * 1000 is 4025.0000000000005 in floating point.
    expect(listPrice(request({ resolution: 'FourK', frameRate: 60, durationSec: 4.025 }))).toBe(161n);
    // 5 x 2.015 x 4 x 1.6 x 60/30 = 128.96 -> 129; 2.015 * 1000 is 2015.0000000000002.
    expect(listPrice(request({ quality: 'Lossless', resolution: 'FourK', frameRate: 60, durationSec: 2.015 }))).toBe(129n);
  });

  it('adds the voiceover fee of 100', () => {
    expect(listPrice(request({ hasVoiceover: true }))).toBe(150n);
    expect(listPrice(request({ quality: 'Lossless', resolution: 'FourK', frameRate: 60, hasVoiceover: true }))).toBe(740n);
  });
});

describe('checkLimits and quoteRender by price type', () => {
  it('Free: Low or Medium, HD, at most 30 fps and 30 s, charged 0 on the background queue', () => {
    const quote = quoteRender(request({ priceType: 'Free', quality: 'Medium', durationSec: 30 }), nobody);
    expect(quote).toEqual({ listPriceMinor: 120n, discountMinor: 0n, tipMinor: 0n, chargeMinor: 0n, priorityQueue: 'Background' });
    expect(() => checkLimits(request({ priceType: 'Free', quality: 'Low', frameRate: 30, durationSec: 30 }))).not.toThrow();

    expect(paths(validationErrorOf(() => quoteRender(request({ priceType: 'Free', quality: 'High' }), nobody)))).toEqual(['quality']);
    expect(paths(validationErrorOf(() => checkLimits(request({ priceType: 'Free', quality: 'Low', resolution: 'FullHD' }))))).toEqual([
      'resolution',
    ]);
    expect(paths(validationErrorOf(() => checkLimits(request({ priceType: 'Free', quality: 'Low', frameRate: 60 }))))).toEqual([
      'frameRate',
    ]);
    expect(paths(validationErrorOf(() => checkLimits(request({ priceType: 'Free', quality: 'Low', durationSec: 30.5 }))))).toEqual([
      'durationSec',
    ]);
    // Every problem at once, so a caller can fix them together.
    const all = validationErrorOf(() =>
      checkLimits(request({ priceType: 'Free', quality: 'Full', resolution: 'FourK', frameRate: 60, durationSec: 31 })),
    );
    expect(paths(all)).toEqual(['durationSec', 'frameRate', 'quality', 'resolution']);
    expect(all.code).toBe('VALIDATION_FAILED');
  });

  it('Preview: Low only, HD or FullHD, at most 60 s, charged 0 on the standard queue', () => {
    const quote = quoteRender(request({ priceType: 'Preview', quality: 'Low', resolution: 'FullHD', frameRate: 60, durationSec: 60 }), nobody);
    expect(quote.chargeMinor).toBe(0n);
    expect(quote.priorityQueue).toBe('Standard');
    expect(paths(validationErrorOf(() => checkLimits(request({ priceType: 'Preview', quality: 'Medium' }))))).toEqual(['quality']);
    expect(paths(validationErrorOf(() => checkLimits(request({ priceType: 'Preview', quality: 'Low', resolution: 'TwoK' }))))).toEqual([
      'resolution',
    ]);
    expect(paths(validationErrorOf(() => checkLimits(request({ priceType: 'Preview', quality: 'Low', durationSec: 61 }))))).toEqual([
      'durationSec',
    ]);
  });

  it('Plan: refused without a plan, charged 0 with one', () => {
    expect(() => quoteRender(request({ priceType: 'Plan' }), nobody)).toThrow(ForbiddenError);
    expect(() => quoteRender(request({ priceType: 'Plan' }), reseller)).toThrow(ForbiddenError);
    const quote = quoteRender(request({ priceType: 'Plan', quality: 'Lossless', resolution: 'FourK', durationSec: 600 }), subscriber);
    expect(quote.listPriceMinor).toBe(19_200n);
    expect(quote.chargeMinor).toBe(0n);
    expect(quote.priorityQueue).toBe('Standard');
  });

  it('Reseller: needs the reseller role, pays 70% of the list price, at least 50', () => {
    expect(() => quoteRender(request({ priceType: 'Reseller' }), nobody)).toThrow(ForbiddenError);
    expect(() => quoteRender(request({ priceType: 'Reseller' }), subscriber)).toThrow(ForbiddenError);
    const quote = quoteRender(request({ priceType: 'Reseller', durationSec: 200 }), reseller);
    expect(quote).toMatchObject({ listPriceMinor: 1000n, chargeMinor: 700n, priorityQueue: 'Priority' });
    // 70% of 50 is 35: the minimum charge applies.
    expect(quoteRender(request({ priceType: 'Reseller' }), reseller).chargeMinor).toBe(50n);
  });

  it('Snapshot: a flat 25 whatever the settings, for at most 1 s', () => {
    const quote = quoteRender(request({ priceType: 'Snapshot', quality: 'Lossless', resolution: 'FourK', durationSec: 1 }), nobody);
    expect(quote).toMatchObject({ listPriceMinor: 32n, chargeMinor: 25n, priorityQueue: 'Standard' });
    expect(quoteRender(request({ priceType: 'Snapshot', durationSec: 0.04 }), nobody).chargeMinor).toBe(25n);
    expect(paths(validationErrorOf(() => quoteRender(request({ priceType: 'Snapshot', durationSec: 1.01 }), nobody)))).toEqual([
      'durationSec',
    ]);
  });

  it('Cash: the list price on the priority queue, at least 50', () => {
    expect(quoteRender(request({ durationSec: 100 }), nobody)).toEqual({
      listPriceMinor: 500n,
      discountMinor: 0n,
      tipMinor: 0n,
      chargeMinor: 500n,
      priorityQueue: 'Priority',
    });
    // 5 x 1 x 0.6 x 24/30 = 2.4 -> 3, charged the minimum of 50.
    const tiny = quoteRender(request({ quality: 'Low', frameRate: 24, durationSec: 1 }), nobody);
    expect(tiny.listPriceMinor).toBe(3n);
    expect(tiny.chargeMinor).toBe(50n);
    expect(tiny.discountMinor).toBe(0n);
  });

  it('puts each price type on its queue', () => {
    const queues = {
      Free: quoteRender(request({ priceType: 'Free', quality: 'Low' }), nobody).priorityQueue,
      Preview: quoteRender(request({ priceType: 'Preview', quality: 'Low' }), nobody).priorityQueue,
      Cash: quoteRender(request(), nobody).priorityQueue,
      Plan: quoteRender(request({ priceType: 'Plan' }), subscriber).priorityQueue,
      Snapshot: quoteRender(request({ priceType: 'Snapshot', durationSec: 1 }), nobody).priorityQueue,
      Reseller: quoteRender(request({ priceType: 'Reseller' }), reseller).priorityQueue,
    };
    expect(queues).toEqual({
      Free: 'Background',
      Preview: 'Standard',
      Cash: 'Priority',
      Plan: 'Standard',
      Snapshot: 'Standard',
      Reseller: 'Priority',
    });
  });
});

describe('discounts', () => {
  it('takes a percentage off the Cash price, rounded in the payer’s favour', () => {
    const quote = quoteRender(request({ durationSec: 200, discount: percentOff(20) }), nobody);
    expect(quote).toMatchObject({ listPriceMinor: 1000n, discountMinor: 200n, chargeMinor: 800n });
    // 15% of 1010 is 151.5: 151 off, 859 charged.
    const odd = quoteRender(request({ durationSec: 202, discount: percentOff(15) }), nobody);
    expect(odd.listPriceMinor).toBe(1010n);
    expect(odd.chargeMinor).toBe(859n);
  });

  it('takes an amount off, capped at the price, and the Cash minimum still applies', () => {
    expect(quoteRender(request({ durationSec: 200, discount: amountOff(300n) }), nobody).chargeMinor).toBe(700n);
    const capped = quoteRender(request({ durationSec: 200, discount: amountOff(5000n) }), nobody);
    expect(capped.chargeMinor).toBe(50n);
    expect(capped.discountMinor).toBe(950n);
    // 100% off a Cash render still pays the minimum.
    expect(quoteRender(request({ durationSec: 200, discount: percentOff(100) }), nobody).chargeMinor).toBe(50n);
  });

  it('applies to Snapshot (capped at 25, no minimum) and to Reseller (after the 70% share)', () => {
    expect(quoteRender(request({ priceType: 'Snapshot', durationSec: 1, discount: percentOff(20) }), nobody).chargeMinor).toBe(20n);
    const free = quoteRender(request({ priceType: 'Snapshot', durationSec: 1, discount: amountOff(100n) }), nobody);
    expect(free.chargeMinor).toBe(0n);
    expect(free.discountMinor).toBe(25n);
    // 70% of 1000 = 700, less 10% = 630.
    expect(quoteRender(request({ priceType: 'Reseller', durationSec: 200, discount: percentOff(10) }), reseller).chargeMinor).toBe(630n);
    expect(quoteRender(request({ priceType: 'Reseller', durationSec: 200, discount: amountOff(100n) }), reseller).chargeMinor).toBe(600n);
  });

  it('is refused for Free, Preview and Plan, naming discountCode', () => {
    const free = validationErrorOf(() => quoteRender(request({ priceType: 'Free', quality: 'Low', discount: percentOff(10) }), nobody));
    expect(paths(free)).toEqual(['discountCode']);
    const preview = validationErrorOf(() => checkLimits(request({ priceType: 'Preview', quality: 'Low', discount: amountOff(1n) })));
    expect(paths(preview)).toEqual(['discountCode']);
    const plan = validationErrorOf(() => quoteRender(request({ priceType: 'Plan', discount: percentOff(10) }), subscriber));
    expect(paths(plan)).toEqual(['discountCode']);
  });
});

describe('the support_flatrender tip', () => {
  it('adds 10% of the price after discount, at least 100', () => {
    const big = quoteRender(request({ durationSec: 1000, supportFlatrender: true }), nobody);
    expect(big).toMatchObject({ listPriceMinor: 5000n, tipMinor: 500n, chargeMinor: 5500n });
    const discounted = quoteRender(request({ durationSec: 1000, supportFlatrender: true, discount: percentOff(20) }), nobody);
    expect(discounted).toMatchObject({ discountMinor: 1000n, tipMinor: 400n, chargeMinor: 4400n });
    const small = quoteRender(request({ supportFlatrender: true }), nobody);
    expect(small).toMatchObject({ tipMinor: 100n, chargeMinor: 150n });
  });

  it('applies to price types that are otherwise free', () => {
    const free = quoteRender(request({ priceType: 'Free', quality: 'Low', supportFlatrender: true }), nobody);
    expect(free).toMatchObject({ tipMinor: 100n, chargeMinor: 100n, priorityQueue: 'Background' });
    expect(quoteRender(request({ priceType: 'Plan', supportFlatrender: true }), subscriber).chargeMinor).toBe(100n);
    expect(quoteRender(request({ priceType: 'Snapshot', durationSec: 1, supportFlatrender: true }), nobody).chargeMinor).toBe(125n);
  });

  it('is 0 when not asked for', () => {
    expect(quoteRender(request({ durationSec: 1000 }), nobody).tipMinor).toBe(0n);
  });
});

describe('refundOnCancel', () => {
  // 388 paid, of which a 100 tip; 600 frames.
  const job = { paidPriceMinor: 388n, tipMinor: 100n, totalFrames: 600 };

  it('gives back everything paid, tip included, when no frame was rendered', () => {
    expect(refundOnCancel(job, 0)).toBe(388n);
    expect(refundOnCancel({ paidPriceMinor: 50n, tipMinor: 0n, totalFrames: 300 }, 0)).toBe(50n);
    expect(refundOnCancel({ paidPriceMinor: 0n, tipMinor: 0n, totalFrames: 300 }, 0)).toBe(0n);
  });

  it("gives back the unrendered frames' share of the price without the tip, rounded down", () => {
    // 288 x 540 / 600 = 259.2
    expect(refundOnCancel(job, 60)).toBe(259n);
    // 288 x 300 / 600 = 144 exactly
    expect(refundOnCancel(job, 300)).toBe(144n);
    // 288 x 1 / 600 = 0.48
    expect(refundOnCancel(job, 599)).toBe(0n);
    // 50 x 299 / 300 = 49.83
    expect(refundOnCancel({ paidPriceMinor: 50n, tipMinor: 0n, totalFrames: 300 }, 1)).toBe(49n);
    // A tip-only (Free) job refunds nothing once a frame is rendered.
    expect(refundOnCancel({ paidPriceMinor: 100n, tipMinor: 100n, totalFrames: 300 }, 1)).toBe(0n);
  });

  it('gives back nothing when every frame was rendered (or more were counted)', () => {
    expect(refundOnCancel(job, 600)).toBe(0n);
    expect(refundOnCancel(job, 700)).toBe(0n);
  });

  it('never refunds more than was paid nor less than zero', () => {
    for (let rendered = 0; rendered <= 600; rendered += 37) {
      const amount = refundOnCancel(job, rendered);
      expect(amount >= 0n && amount <= job.paidPriceMinor).toBe(true);
    }
  });
});
