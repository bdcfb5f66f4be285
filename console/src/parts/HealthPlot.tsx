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
  value(sample: Sample): number;
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
    { label: 'Disk cache', unit: ' GB', max: Math.max(1, ...samples.map((sample) => sample.cacheUsedGb)), value: (sample) => sample.cacheUsedGb },
  ];
  const span = Math.max(1, to - from);
  const x = (iso: string) => LEFT + ((Date.parse(iso) - from) / span) * (WIDTH - LEFT - 10);
  const stripTop = lanes.length * (LANE_HEIGHT + GAP);
  const height = stripTop + STRIP + AXIS;
  const ticks = Array.from({ length: 5 }, (_unused, index) => from + (index * span) / 4);
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
          const points = samples.map((sample) => `${x(sample.recordedAt).toFixed(1)},${y(lane.value(sample)).toFixed(1)}`).join(' ');
          return (
            <g key={lane.label} className="lane">
              <text x={0} y={top + 14} className="lane-label">
                {lane.label}
              </text>
              <text x={0} y={top + 32} className="lane-value">
                {latest ? `${Math.round(lane.value(latest))}${lane.unit}` : '–'}
              </text>
              <text x={LEFT - 6} y={top + 10} className="lane-scale" textAnchor="end">
                {lane.max}
                {lane.unit}
              </text>
              <rect x={LEFT} y={top} width={WIDTH - LEFT - 10} height={LANE_HEIGHT} className="lane-frame" />
              {samples.length > 1 && <polyline points={points} className={`series series-${index}`} />}
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
        {ticks.map((tick) => (
          <text key={tick} x={LEFT + ((tick - from) / span) * (WIDTH - LEFT - 10)} y={height - 6} className="tick" textAnchor="middle">
            {new Date(tick).toLocaleTimeString([], span > 86_400_000 ? { month: 'short', day: 'numeric' } : { hour: '2-digit', minute: '2-digit' })}
          </text>
        ))}
        {crashes
          .filter((crash) => Date.parse(crash.crashedAt) >= from && Date.parse(crash.crashedAt) <= to)
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
        {samples.some((sample) => sample.bucketSeconds > 0) ? ', older ones averaged into buckets' : ''}
      </figcaption>
    </figure>
  );
}
