// The soak's audit of what progress subscribers saw, on made-up views: pure, no service.
import { describe, expect, it } from 'vitest';
import {
  auditViews,
  GRAPHQL_WS_INVARIANT,
  type GraphqlWsView,
  LEGACY_WS_INVARIANT,
  type LegacyView,
  newGraphqlWsView,
  newLegacyView,
  statusOfCloseCode,
} from '../../soak/lib/subscribers.ts';

const JOB = '00000000-0000-4000-8000-000000000001';

/** A subscriber that saw seqs 3 to 20 and the job's completion. */
function graphqlView(overrides: Partial<GraphqlWsView> = {}): GraphqlWsView {
  return { ...newGraphqlWsView(JOB), firstSeq: 3, lastSeq: 20, lastStep: 'Completed', messages: 18, ended: true, ...overrides };
}

/** A legacy socket that saw 12 messages, the last Completed, then a normal close. */
function legacyView(overrides: Partial<LegacyView> = {}): LegacyView {
  return { ...newLegacyView(JOB), messages: 12, lastStep: 'Completed', closedNormally: true, ...overrides };
}

const finals = (lastSeq: number, step: string) => new Map([[JOB, { lastSeq, step }]]);
const details = (views: { graphqlWs?: GraphqlWsView[]; legacy?: LegacyView[] }, lastSeq = 20, step = 'Completed') =>
  auditViews({ graphqlWs: views.graphqlWs ?? [], legacy: views.legacy ?? [] }, finals(lastSeq, step));

describe('the audit of progress subscribers', () => {
  it('passes subscribers that saw every seq from their first to the last, ending on the terminal step', () => {
    expect(details({ graphqlWs: [graphqlView()], legacy: [legacyView()] })).toEqual([]);
  });

  it('reports duplicates, reorderings, gaps and a missing tail, naming the job', () => {
    const violations = details({ graphqlWs: [graphqlView({ duplicated: 1, outOfOrder: 2, missing: 3, lastSeq: 18, lastStep: 'Rendering', examples: ['seq 7 twice'] })] });
    expect(violations).toHaveLength(1);
    expect(violations[0]?.invariant).toBe(GRAPHQL_WS_INVARIANT);
    expect(violations[0]?.detail).toContain(JOB);
    for (const part of ['1 duplicated', '2 out of order', '3 missing between', '2 missing at the end', 'last step Rendering', 'seq 7 twice']) {
      expect(violations[0]?.detail).toContain(part);
    }
  });

  it('reports a subscriber still open, or closed by stop(), after its job ended', () => {
    expect(details({ graphqlWs: [graphqlView({ ended: false })] })[0]?.detail).toContain('still open');
    expect(details({ graphqlWs: [graphqlView({ ended: false, stopped: true })] })[0]?.detail).toContain('closed by stop()');
    expect(details({ legacy: [legacyView({ closedNormally: false })] })[0]?.detail).toContain('not closed with 1000');
  });

  it('reports a subscription the server did not complete after the terminal step', () => {
    expect(details({ graphqlWs: [graphqlView({ uncompleted: 1 })] })[0]?.detail).toContain('not completed within');
  });

  it('skips jobs that did not reach a terminal step, and jobs without a final', () => {
    expect(details({ graphqlWs: [graphqlView({ ended: false, lastStep: 'Rendering' })], legacy: [legacyView({ closedNormally: false })] }, 20, 'Rendering')).toEqual([]);
    expect(auditViews({ graphqlWs: [graphqlView({ ended: false })], legacy: [] }, new Map())).toEqual([]);
  });

  it('reports a subscriber that received nothing, or gave up on a refusal', () => {
    expect(details({ graphqlWs: [graphqlView({ messages: 0, firstSeq: null, lastSeq: null, lastStep: null, ended: false })] })[0]?.detail).toContain(
      'received no message',
    );
    expect(details({ graphqlWs: [graphqlView({ failure: 'refused 404 NOT_FOUND', ended: false })] })[0]?.detail).toContain('refused 404');
  });

  it('reports a legacy socket whose steps went backwards or that ended on another step', () => {
    const violations = details({ legacy: [legacyView({ backwards: 1, lastStep: 'Cancelled', examples: ['Queued after Rendering'] })] });
    expect(violations).toHaveLength(1);
    expect(violations[0]?.invariant).toBe(LEGACY_WS_INVARIANT);
    expect(violations[0]?.detail).toContain('backwards 1 times');
    expect(violations[0]?.detail).toContain('last step Cancelled, job ended Completed');
  });

  it('reads close codes as the statuses they mirror, and the client’s own closes as no answer', () => {
    expect(statusOfCloseCode(4403)).toBe(403);
    expect(statusOfCloseCode(4500)).toBe(500);
    expect(statusOfCloseCode(1011)).toBe(500);
    expect(statusOfCloseCode(4499)).toBe(0);
    expect(statusOfCloseCode(4504)).toBe(0);
    expect(statusOfCloseCode(1006)).toBe(0);
  });
});
