// How a render is priced. Pure: the same request always gets the same quote, so the quote can be
// shown before submitting and re-checked in tests. Amounts are integer minor units (cents).
//
// List price = BASE_RATE_PER_SECOND x duration x resolution factor x quality factor x (fps / 30),
// rounded up to a whole cent, plus VOICEOVER_FEE when the project has a voiceover.
//
// Price types:
// - Free: Low or Medium quality, HD, at most 30 fps and 30 s. Charged 0; background queue.
// - Preview: Low quality, HD or FullHD, at most 60 s. Charged 0; standard queue.
// - Cash: the list price less any discount code, at least MINIMUM_CHARGE; priority queue.
// - Plan: covered by the caller's subscription plan (the `plan` claim of the user's token);
//   charged 0; standard queue. Without a plan it is refused.
// - Snapshot: a still of at most 1 s, flat SNAPSHOT_PRICE less any discount; standard queue.
// - Reseller: RESELLER_SHARE of the list price less any discount, at least MINIMUM_CHARGE, for
//   callers with the `reseller` role; priority queue.
// Discount codes apply to Cash, Snapshot and Reseller. The support_flatrender tip adds
// TIP_SHARE of the charge, at least MINIMUM_TIP, to any price type.
import type { PriceType, PriorityQueue, Quality, Resolution } from '../../generated/prisma/enums.ts';
import type { Actor } from '../actor.ts';
import { ForbiddenError, ValidationError } from '../errors.ts';

export const BASE_RATE_PER_SECOND = 5;
export const VOICEOVER_FEE = 100;
export const MINIMUM_CHARGE = 50;
export const SNAPSHOT_PRICE = 25;
export const RESELLER_SHARE_PERCENT = 70;
export const TIP_SHARE_PERCENT = 10;
export const MINIMUM_TIP = 100;

/** Factors in percent, so that all arithmetic stays in integers. */
export const RESOLUTION_FACTOR: Record<Resolution, number> = { HD: 100, FullHD: 150, TwoK: 200, FourK: 400 };
export const QUALITY_FACTOR: Record<Quality, number> = { Low: 60, Medium: 80, High: 100, Full: 125, Lossless: 160 };

interface Limits {
  qualities?: Quality[];
  resolutions?: Resolution[];
  maxFrameRate?: number;
  maxDurationSec?: number;
}

export const PRICE_TYPE_LIMITS: Record<PriceType, Limits> = {
  Free: { qualities: ['Low', 'Medium'], resolutions: ['HD'], maxFrameRate: 30, maxDurationSec: 30 },
  Preview: { qualities: ['Low'], resolutions: ['HD', 'FullHD'], maxDurationSec: 60 },
  Cash: {},
  Plan: {},
  Snapshot: { maxDurationSec: 1 },
  Reseller: {},
};

const DISCOUNTABLE: PriceType[] = ['Cash', 'Snapshot', 'Reseller'];

export interface Discount {
  code: string;
  percentOff: number | null;
  amountOffMinor: bigint | null;
}

export interface PriceRequest {
  quality: Quality;
  resolution: Resolution;
  frameRate: number;
  durationSec: number;
  hasVoiceover: boolean;
  priceType: PriceType;
  supportFlatrender: boolean;
  discount?: Discount | null;
}

export interface Entitlements {
  plan: string | null;
  reseller: boolean;
}

/** What the caller's token entitles them to: its `plan` claim and its `reseller` role. */
export function entitlementsOf(actor: Actor): Entitlements {
  return actor.kind === 'user' ? { plan: actor.plan, reseller: actor.isReseller } : { plan: null, reseller: false };
}

/**
 * An admin acting for a user (retrying the user's job) is trusted with the price type the user
 * had; anyone else has their own entitlements.
 */
export function entitlementsActingFor(actor: Actor): Entitlements {
  return actor.kind === 'user' && actor.isAdmin ? { plan: 'admin', reseller: true } : entitlementsOf(actor);
}

/** Who may use a price type: Plan needs a subscription plan, Reseller the reseller role. */
export function checkPriceTypeAllowed(priceType: PriceType, entitlements: Entitlements): void {
  if (priceType === 'Plan' && !entitlements.plan) throw new ForbiddenError('price_type Plan needs an active subscription plan');
  if (priceType === 'Reseller' && !entitlements.reseller) throw new ForbiddenError('price_type Reseller is for reseller accounts');
}

export interface Quote {
  listPriceMinor: bigint;
  discountMinor: bigint;
  tipMinor: bigint;
  /** What the wallet is charged: the price after discount plus the tip. */
  chargeMinor: bigint;
  priorityQueue: PriorityQueue;
}

const QUEUE: Record<PriceType, PriorityQueue> = {
  Free: 'Background',
  Preview: 'Standard',
  Cash: 'Priority',
  Plan: 'Standard',
  Snapshot: 'Standard',
  Reseller: 'Priority',
};

function ceilDiv(a: bigint, b: bigint): bigint {
  return (a + b - 1n) / b;
}

export function listPrice(request: Pick<PriceRequest, 'quality' | 'resolution' | 'frameRate' | 'durationSec' | 'hasVoiceover'>): bigint {
  // Whole milliseconds first: 4.025 * 1000 is 4025.0000000000005 in floating point.
  const durationMs = BigInt(Math.round(request.durationSec * 1000));
  const numerator =
    BigInt(BASE_RATE_PER_SECOND) *
    durationMs *
    BigInt(RESOLUTION_FACTOR[request.resolution]) *
    BigInt(QUALITY_FACTOR[request.quality]) *
    BigInt(request.frameRate);
  const rendering = ceilDiv(numerator, 1000n * 100n * 100n * 30n);
  return rendering + (request.hasVoiceover ? BigInt(VOICEOVER_FEE) : 0n);
}

export function checkLimits(request: PriceRequest): void {
  const limits = PRICE_TYPE_LIMITS[request.priceType];
  const problems: { path: string; message: string }[] = [];
  if (limits.qualities && !limits.qualities.includes(request.quality)) {
    problems.push({ path: 'quality', message: `${request.priceType} renders allow ${limits.qualities.join(', ')}` });
  }
  if (limits.resolutions && !limits.resolutions.includes(request.resolution)) {
    problems.push({ path: 'resolution', message: `${request.priceType} renders allow ${limits.resolutions.join(', ')}` });
  }
  if (limits.maxFrameRate !== undefined && request.frameRate > limits.maxFrameRate) {
    problems.push({ path: 'frameRate', message: `${request.priceType} renders allow at most ${limits.maxFrameRate} fps` });
  }
  if (limits.maxDurationSec !== undefined && request.durationSec > limits.maxDurationSec) {
    problems.push({ path: 'durationSec', message: `${request.priceType} renders last at most ${limits.maxDurationSec} s` });
  }
  if (request.discount && !DISCOUNTABLE.includes(request.priceType)) {
    problems.push({ path: 'discountCode', message: `discount codes apply to ${DISCOUNTABLE.join(', ')} renders` });
  }
  if (problems.length > 0) throw new ValidationError(`The render exceeds what ${request.priceType} allows`, problems);
}

function applyDiscount(price: bigint, discount: Discount | null | undefined): bigint {
  if (!discount) return 0n;
  const off = discount.percentOff !== null ? (price * BigInt(discount.percentOff)) / 100n : (discount.amountOffMinor ?? 0n);
  return off > price ? price : off;
}

export function quoteRender(request: PriceRequest, entitlements: Entitlements): Quote {
  checkLimits(request);
  checkPriceTypeAllowed(request.priceType, entitlements);
  const list = listPrice(request);
  let base: bigint;
  switch (request.priceType) {
    case 'Free':
    case 'Preview':
    case 'Plan':
      base = 0n;
      break;
    case 'Snapshot':
      base = BigInt(SNAPSHOT_PRICE);
      break;
    case 'Cash':
      base = list;
      break;
    case 'Reseller':
      base = (list * BigInt(RESELLER_SHARE_PERCENT)) / 100n;
      break;
  }
  const discountMinor = applyDiscount(base, request.discount);
  let price = base - discountMinor;
  if ((request.priceType === 'Cash' || request.priceType === 'Reseller') && price < BigInt(MINIMUM_CHARGE)) {
    price = BigInt(MINIMUM_CHARGE);
  }
  const tipMinor = request.supportFlatrender
    ? [(price * BigInt(TIP_SHARE_PERCENT)) / 100n, BigInt(MINIMUM_TIP)].reduce((a, b) => (a > b ? a : b))
    : 0n;
  return {
    listPriceMinor: list,
    discountMinor: base - price > 0n ? base - price : 0n,
    tipMinor,
    chargeMinor: price + tipMinor,
    priorityQueue: QUEUE[request.priceType],
  };
}

/**
 * What a cancelled job gives back: everything when no frame was rendered yet; otherwise the
 * share of the price (tip excluded) for the frames not rendered, rounded down to a cent.
 */
export function refundOnCancel(
  job: { paidPriceMinor: bigint; tipMinor: bigint; totalFrames: number },
  framesRendered: number,
): bigint {
  if (framesRendered <= 0) return job.paidPriceMinor;
  const remaining = BigInt(Math.max(0, job.totalFrames - framesRendered));
  return ((job.paidPriceMinor - job.tipMinor) * remaining) / BigInt(job.totalFrames);
}
