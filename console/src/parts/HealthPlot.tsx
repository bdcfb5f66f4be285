// A node's health over time from the samples the API keeps (raw for an hour, then 1-minute and
// 1-hour buckets): one lane per figure on a shared time axis, a strip for whether After Effects
// ran, and the node's crashes marked across every lane.

export interface Sample {
  recordedAt: string;
  bucketSeconds: number;
  status: string;
  cpuPct: number;
  ramAvailableMb: number;
  aeRunning: boolean;
  /** Null where the agent did not report it. */
  aeMemoryMb: number | null;
  cacheUsedGb: number;
}

export interface Crash {
  id: string;
  crashedAt: string;
  crashSignal: string;
}

interface Lane {
  label: string;
  unit: string;
  max: number;
  /** Null leaves a gap in the line. */
  value(sample: Sample): number | null;
}

/** The line's runs of points between gaps. */
function runs(samples: Sample[], point: (sample: Sample) => string | null): string[] {
  const lines: string[][] = [[]];
  for (const sample of samples) {
    const at = point(sample);
    if (at !== null) lines.at(-1)!.push(at);
    else if (lines.at(-1)!.length > 0) lines.push([]);
  }
  return lines.filter((line) => line.length > 1).map((line) => line.join(' '));
}

const WIDTH = 900;
const LEFT = 150;
const LANE_HEIGHT = 70;
const GAP = 18;
const STRIP = 16;
const AXIS = 24;

export function HealthPlot(props: { samples: Sample[]; crashes: Crash[]; from: number; to: number; ramGb: number }) {
  const { samples, crashes, from, to, ramGb } = props;
  const ramMb = ramGb * 1024;
  const lanes: Lane[] = [
    { label: 'CPU', unit: '%', max: 100, value: (sample) => sample.cpuPct },
    ramMb > 0
      ? { label: 'Memory used', unit: '%', max: 100, value: (sample) => Math.max(0, 100 - (100 * sample.ramAvailableMb) / ramMb) }
      : { label: 'Memory free', unit: ' MB', max: Math.max(1, ...samples.map((s) => s.ramAvailableMb)), value: (s) => s.ramAvailableMb },
    {
      label: 'AE memory',
      unit: ' MB',
      max: ramMb > 0 ? ramMb : Math.max(1, ...samples.map((sample) => sample.aeMemoryMb ?? 0)),
      value: (sample) => sample.aeMemoryMb,
    },
    { label: 'Disk cache', unit: ' GB', max: Math.max(1, ...samples.map((sample) => sample.cacheUsedGb)), value: (sample) => sample.cacheUsedGb },
  ];
  // A node younger than the window is plotted from its first sample, not as a sliver at the end.
  const first = samples[0] ? Date.parse(samples[0].recordedAt) : from;
  const start = Math.max(from, first);
  const span = Math.max(1, to - start);
  const x = (iso: string) => LEFT + ((Date.parse(iso) - start) / span) * (WIDTH - LEFT - 10);
  const stripTop = lanes.length * (LANE_HEIGHT + GAP);
  const height = stripTop + STRIP + AXIS;
  const ticks = Array.from({ length: 5 }, (_unused, index) => start + (index * span) / 4);
  const latest = samples.at(-1);

  return (
    <figure className="health-plot">
      <svg
        viewBox={`0 0 ${WIDTH} ${height}`}
        role="img"
        aria-label={`Health over ${samples.length} samples${latest ? `; latest CPU ${latest.cpuPct} %, ${latest.ramAvailableMb} MB free` : ''}; ${crashes.length} crashes`}
      >
        {lanes.map((lane, index) => {
          const top = index * (LANE_HEIGHT + GAP);
          const y = (value: number) => top + LANE_HEIGHT - (Math.min(value, lane.max) / lane.max) * LANE_HEIGHT;
          const lines = runs(samples, (sample) => {
            const value = lane.value(sample);
            return value === null ? null : `${x(sample.recordedAt).toFixed(1)},${y(value).toFixed(1)}`;
          });
          const shown = latest ? lane.value(latest) : null;
          return (
            <g key={lane.label} className="lane">
              <text x={0} y={top + 14} className="lane-label">
                {lane.label}
              </text>
              <text x={0} y={top + 32} className="lane-value">
                {shown === null ? 'not reported' : `${Math.round(shown)}${lane.unit}`}
              </text>
              <text x={LEFT - 6} y={top + 10} className="lane-scale" textAnchor="end">
                {lane.max}
                {lane.unit}
              </text>
              <rect x={LEFT} y={top} width={WIDTH - LEFT - 10} height={LANE_HEIGHT} className="lane-frame" />
              {lines.map((points) => (
                <polyline key={points} points={points} className={`series series-${index}`} />
              ))}
            </g>
          );
        })}
        <text x={0} y={stripTop + 12} className="lane-label">
          After Effects
        </text>
        {samples.map((sample, index) => {
          const next = samples[index + 1];
          if (!sample.aeRunning) return null;
          const start = x(sample.recordedAt);
          const end = next ? x(next.recordedAt) : Math.min(WIDTH - 10, start + 4);
          return <rect key={sample.recordedAt} x={start} y={stripTop} width={Math.max(1, end - start)} height={STRIP} className="ae-running" />;
        })}
        <rect x={LEFT} y={stripTop} width={WIDTH - LEFT - 10} height={STRIP} className="lane-frame" />
        {ticks.map((tick, index) => (
          <text
            key={tick}
            x={LEFT + ((tick - start) / span) * (WIDTH - LEFT - 10)}
            y={height - 6}
            className="tick"
            textAnchor={index === 0 ? 'start' : index === ticks.length - 1 ? 'end' : 'middle'}
          >
            {span > 86_400_000
              ? new Date(tick).toLocaleDateString([], { month: 'short', day: 'numeric' })
              : new Date(tick).toLocaleTimeString([], span < 600_000 ? { hour: '2-digit', minute: '2-digit', second: '2-digit' } : { hour: '2-digit', minute: '2-digit' })}
          </text>
        ))}
        {crashes
          .filter((crash) => Date.parse(crash.crashedAt) >= start && Date.parse(crash.crashedAt) <= to)
          .map((crash) => (
            <g key={crash.id} className="crash-mark">
              <title>{`Crash ${new Date(crash.crashedAt).toLocaleString()}: ${crash.crashSignal || 'no signal reported'}`}</title>
              <line x1={x(crash.crashedAt)} x2={x(crash.crashedAt)} y1={0} y2={stripTop + STRIP} />
              <path d={`M${x(crash.crashedAt) - 5} ${stripTop + STRIP + 2} l10 10 m0 -10 l-10 10`} />
            </g>
          ))}
      </svg>
      <figcaption>
        <span className="swatch ae-running" /> After Effects running · <span className="crash-key">✕</span> crash (hover for the signal) ·{' '}
        {samples.length} samples
        {start > from ? ' since the first one' : ''}
        {samples.some((sample) => sample.bucketSeconds > 0) ? ', older ones averaged into buckets' : ''}
      </figcaption>
    </figure>
  );
}
