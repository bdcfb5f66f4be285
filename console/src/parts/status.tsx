// States as a shape and a word as well as a colour, so that no operator depends on telling the
// colours apart. The palette is Okabe and Ito's, chosen to stay distinct under colour blindness.
import type { ReactNode } from 'react';

type Shape = 'ring' | 'dot' | 'play' | 'cross' | 'pause' | 'cycle' | 'check' | 'slash' | 'half' | 'clock';

const SHAPES: Record<Shape, ReactNode> = {
  ring: <circle cx="8" cy="8" r="5" fill="none" stroke="currentColor" strokeWidth="2" />,
  dot: <circle cx="8" cy="8" r="6" fill="currentColor" />,
  play: <path d="M4 2.5 L13.5 8 L4 13.5 Z" fill="currentColor" />,
  cross: <path d="M3 3 L13 13 M13 3 L3 13" stroke="currentColor" strokeWidth="3" strokeLinecap="round" />,
  pause: <path d="M4 2.5 H7 V13.5 H4 Z M9 2.5 H12 V13.5 H9 Z" fill="currentColor" />,
  cycle: (
    <g fill="none" stroke="currentColor" strokeWidth="2">
      <path d="M13 8 A5 5 0 1 1 10.5 3.7" />
      <path d="M9 1.5 L11.5 3.8 L9 6" strokeLinejoin="round" />
    </g>
  ),
  check: <path d="M2.5 8.5 L6.5 12.5 L13.5 3.5" fill="none" stroke="currentColor" strokeWidth="3" strokeLinecap="round" strokeLinejoin="round" />,
  slash: (
    <g fill="none" stroke="currentColor" strokeWidth="2">
      <circle cx="8" cy="8" r="6" />
      <path d="M4 12 L12 4" />
    </g>
  ),
  half: (
    <g>
      <circle cx="8" cy="8" r="6" fill="none" stroke="currentColor" strokeWidth="2" />
      <path d="M8 2 A6 6 0 0 1 8 14 Z" fill="currentColor" />
    </g>
  ),
  clock: (
    <g fill="none" stroke="currentColor" strokeWidth="2">
      <circle cx="8" cy="8" r="6" />
      <path d="M8 4.5 V8 L10.5 9.5" strokeLinecap="round" />
    </g>
  ),
};

interface Look {
  shape: Shape;
  colour: string;
}

export const NODE_STATUSES = ['Registered', 'Online', 'Busy', 'Offline', 'Maintenance', 'Updating'] as const;
export type NodeStatus = (typeof NODE_STATUSES)[number];

export const JOB_STEPS = ['Queued', 'Preparing', 'Rendering', 'Encoding', 'Completed', 'Failed', 'Cancelled'] as const;
export type JobStep = (typeof JOB_STEPS)[number];
export const FINISHED_STEPS: ReadonlySet<string> = new Set(['Completed', 'Failed', 'Cancelled']);

const LOOKS: Record<string, Look> = {
  // Nodes
  Registered: { shape: 'ring', colour: '#6b6b6b' },
  Online: { shape: 'dot', colour: '#007a5a' },
  Busy: { shape: 'play', colour: '#0072b2' },
  Offline: { shape: 'cross', colour: '#c44e00' },
  Maintenance: { shape: 'pause', colour: '#9a6700' },
  Updating: { shape: 'cycle', colour: '#a8488a' },
  // Jobs and chunks
  Queued: { shape: 'clock', colour: '#6b6b6b' },
  Pending: { shape: 'clock', colour: '#6b6b6b' },
  Preparing: { shape: 'half', colour: '#9a6700' },
  Assigned: { shape: 'half', colour: '#9a6700' },
  Rendering: { shape: 'play', colour: '#0072b2' },
  Encoding: { shape: 'cycle', colour: '#3a7fb0' },
  Completed: { shape: 'check', colour: '#007a5a' },
  Failed: { shape: 'cross', colour: '#c44e00' },
  Cancelled: { shape: 'slash', colour: '#6b6b6b' },
  // Rollouts and their targets
  InProgress: { shape: 'play', colour: '#0072b2' },
  Halted: { shape: 'pause', colour: '#c44e00' },
  Waiting: { shape: 'clock', colour: '#6b6b6b' },
  Sent: { shape: 'half', colour: '#9a6700' },
  Applied: { shape: 'check', colour: '#007a5a' },
  Skipped: { shape: 'slash', colour: '#6b6b6b' },
};

const FALLBACK: Look = { shape: 'ring', colour: '#6b6b6b' };

export const colourOf = (state: string) => (LOOKS[state] ?? FALLBACK).colour;

export function StateIcon({ state, size = 14 }: { state: string; size?: number }) {
  const look = LOOKS[state] ?? FALLBACK;
  return (
    <svg className="state-icon" width={size} height={size} viewBox="0 0 16 16" aria-hidden="true" style={{ color: look.colour }}>
      {SHAPES[look.shape]}
    </svg>
  );
}

/** The state as icon and word; `label` replaces the word where the state needs explaining. */
export function StateBadge({ state, label }: { state: string; label?: string }) {
  return (
    <span className="badge" data-state={state} style={{ borderColor: colourOf(state), color: colourOf(state) }}>
      <StateIcon state={state} />
      <span className="badge-text">{label ?? state}</span>
    </span>
  );
}
