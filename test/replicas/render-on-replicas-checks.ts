// What both replica tests assert about a run, and the counts they print for CI.
import { expect } from 'vitest';
import type { RenderOutcome } from './render-on-replicas.ts';

export function expectSound(outcome: RenderOutcome) {
  let lost = 0;
  let duplicated = 0;
  let frames = 0;
  for (const job of outcome.jobs) {
    expect(job.step).toBe('Completed');
    expect(job.renderedRows).toBe(job.totalFrames);
    // The counter moves once per accepted frame: more would mean a frame counted twice.
    expect(job.framesRendered).toBe(job.totalFrames);
    for (let frame = 0; frame < job.totalFrames; frame++) {
      const times = outcome.acceptedReports.get(`${job.id}:${frame}`) ?? 0;
      if (times === 0) lost++;
      if (times > 1) duplicated += times - 1;
    }
    frames += job.totalFrames;
  }
  const doubleCharges = outcome.jobs.filter((job) => (outcome.ledger.get(job.id) ?? []).some((entry) => entry !== 'Charge:1')).length;
  for (const job of outcome.jobs) expect(outcome.ledger.get(job.id)).toEqual(['Charge:1']);
  const events = outcome.audits.reduce((sum, audit) => sum + audit.checked, 0);
  const missedEvents = outcome.audits.reduce((sum, audit) => sum + audit.missing + audit.duplicated + audit.outOfOrder, 0);
  for (const audit of outcome.audits) expect(audit).toMatchObject({ first: 1, missing: 0, duplicated: 0, outOfOrder: 0 });
  expect(outcome.samples).toBeGreaterThan(0);
  expect({
    lost,
    duplicated,
    overlappingChunks: outcome.overlappingChunks,
    nodesWithTwoPieces: outcome.nodesWithTwoPieces,
    chunksAssignedTwice: outcome.chunksAssignedTwice,
  }).toEqual({ lost: 0, duplicated: 0, overlappingChunks: 0, nodesWithTwoPieces: 0, chunksAssignedTwice: 0 });
  return { jobs: outcome.jobs.length, frames, eventsChecked: events, missedEvents, lost, duplicated, doubleCharges, sqlSamples: outcome.samples };
}
