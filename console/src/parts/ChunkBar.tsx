// A chunk as a bar of its frames: rendered (solid), in flight on the node holding the chunk
// (striped) and missing (empty), with the counts written out beside the picture.

export interface Chunk {
  startFrame: number;
  endFrame: number;
  status: string;
  framesRendered: number;
}

const HELD = new Set(['Assigned', 'Rendering']);

export function framesOf(chunk: Chunk) {
  const total = chunk.endFrame - chunk.startFrame + 1;
  const rendered = chunk.status === 'Completed' ? total : Math.min(chunk.framesRendered, total);
  const inFlight = HELD.has(chunk.status) ? total - rendered : 0;
  return { total, rendered, inFlight, missing: total - rendered - inFlight };
}

export function ChunkBar({ chunk }: { chunk: Chunk }) {
  const { total, rendered, inFlight, missing } = framesOf(chunk);
  const share = (frames: number) => `${(100 * frames) / total}%`;
  return (
    <div
      className="chunk-bar"
      role="img"
      aria-label={`frames ${chunk.startFrame} to ${chunk.endFrame}: ${rendered} rendered, ${inFlight} in flight, ${missing} missing`}
      data-rendered={rendered}
      data-total={total}
      data-status={chunk.status}
    >
      <span className="frames-rendered" style={{ width: share(rendered) }} />
      <span className="frames-in-flight" style={{ width: share(inFlight) }} />
      <span className="frames-missing" style={{ width: share(missing) }} />
    </div>
  );
}

export function ChunkLegend() {
  return (
    <p className="legend" aria-hidden="true">
      <span className="swatch frames-rendered" /> rendered <span className="swatch frames-in-flight" /> in flight{' '}
      <span className="swatch frames-missing" /> missing
    </p>
  );
}
