import { useEffect, useRef, useState } from 'react';
import { JOB, PROGRESS } from '../documents.ts';
import { useQuery, useThrottled } from '../hooks.ts';
import { ChunkBar, ChunkLegend, framesOf } from '../parts/ChunkBar.tsx';
import { duration, shortId, time } from '../parts/format.ts';
import { FINISHED_STEPS, StateBadge } from '../parts/status.tsx';
import { useConnection, useSession } from '../session.tsx';

// A long render makes thousands of changes; the page keeps the latest ones, as a log view would.
const KEPT_CHANGES = 500;

interface JobDetail {
  id: string;
  name: string;
  userId: string;
  step: string;
  renderProgress: number;
  priorityQueue: string;
  priceType: string;
  quality: string;
  resolution: string;
  frameRate: number;
  totalFrames: number;
  retryCount: number;
  repairAttempts: number;
  failedMessage: string | null;
  preferredRegion: string | null;
  queuedAt: string;
  startedAt: string | null;
  completedAt: string | null;
  frameJobs: {
    id: string;
    startFrame: number;
    endFrame: number;
    orderValue: number;
    status: string;
    framesRendered: number;
    attempt: number;
    lastError: string | null;
    node: { id: string; name: string } | null;
  }[];
  nodeBlocks: { nodeId: string; failures: number; blockedAt: string | null; node: { id: string; name: string } | null }[];
}

interface LogLine {
  timestamp: string;
  level: string;
  nodeId: string | null;
  message: string;
}

interface Progress {
  seq: number;
  step: string;
  progress: number;
  currentFrame: number | null;
  totalFrames: number | null;
  etaSeconds: number | null;
  activeNodes: number;
  message: string | null;
}

export function JobPage({ id }: { id: string }) {
  const { live } = useSession();
  const connection = useConnection(live);
  const answer = useQuery<{ renderJob: JobDetail; renderJobLogs: LogLine[] }>(JOB, { id });
  const refetch = useThrottled(answer.refetch, 500);
  const [events, setEvents] = useState<(Progress & { receivedAt: number })[]>([]);
  const [seen, setSeen] = useState(0);
  const [resumes, setResumes] = useState(0);
  const [failure, setFailure] = useState<string>();
  const lastSeq = useRef<number>();

  useEffect(
    () =>
      live.follow<{ renderProgress: Progress }>(PROGRESS, () => ({ jobId: id, afterSeq: lastSeq.current ?? null }), {
        next: ({ renderProgress }) => {
          lastSeq.current = renderProgress.seq;
          setEvents((before) => [...before, { ...renderProgress, receivedAt: Date.now() }].slice(-KEPT_CHANGES));
          setSeen((count) => count + 1);
          refetch();
          return FINISHED_STEPS.has(renderProgress.step);
        },
        // Each event after the last one seen comes on the new stream, so nothing is lost in the gap.
        resumed: () => setResumes((count) => count + 1),
        failed: (error) => setFailure(error.message),
      }),
    [live, id, refetch],
  );

  if (answer.error) return <p role="alert" className="error">{answer.error.message}</p>;
  if (!answer.data) return <p>Loading the job…</p>;
  const { renderJob: job, renderJobLogs: logs } = answer.data;
  const latest = events.at(-1);
  const step = latest?.step ?? job.step;
  const chunks = [...job.frameJobs].sort((a, b) => a.startFrame - b.startFrame || a.orderValue - b.orderValue);
  const rendered = chunks.reduce((sum, chunk) => sum + framesOf(chunk).rendered, 0);
  const following = !FINISHED_STEPS.has(step) && !failure;

  return (
    <section aria-labelledby="job-title">
      <p className="breadcrumb">
        <a href="#/jobs">Queue</a> / {shortId(job.id)}
      </p>
      <h1 id="job-title">
        {job.name} <StateBadge state={step} />
      </h1>
      <p className="live-line" data-live={following ? connection : 'ended'}>
        {failure
          ? `Progress is not followed: ${failure}`
          : !following
            ? `Ended${latest ? ` at change ${latest.seq}` : ''}.`
            : connection === 'live'
              ? `Following live${latest ? ` at change ${latest.seq}` : ''}.`
              : connection === 'connecting'
                ? 'Connecting…'
                : `Connection lost; resuming after change ${lastSeq.current ?? '–'}…`}
        {resumes > 0 && ` Resumed ${resumes} time${resumes === 1 ? '' : 's'} without losing a change.`}
      </p>
      <div className="progress-row">
        <progress max={100} value={latest?.progress ?? job.renderProgress} aria-label="Progress" />
        <strong>{latest?.progress ?? job.renderProgress} %</strong>
        <span>
          {latest?.currentFrame ?? rendered} of {job.totalFrames} frames
        </span>
        <span>ETA {step === 'Rendering' ? duration(latest?.etaSeconds) : '–'}</span>
        <span>{latest?.activeNodes ?? 0} nodes working</span>
      </div>
      {job.failedMessage && <p className="error">{job.failedMessage}</p>}
      <dl className="facts">
        <dt>Owner</dt>
        <dd>{job.userId}</dd>
        <dt>Queue</dt>
        <dd>
          {job.priorityQueue} ({job.priceType})
        </dd>
        <dt>Output</dt>
        <dd>
          {job.resolution} {job.quality}, {job.frameRate} fps
        </dd>
        <dt>Retries</dt>
        <dd>
          {job.retryCount} retries, {job.repairAttempts} repairs
        </dd>
        <dt>Queued</dt>
        <dd>{time(job.queuedAt)}</dd>
        <dt>Started</dt>
        <dd>{time(job.startedAt)}</dd>
        <dt>Completed</dt>
        <dd>{time(job.completedAt)}</dd>
      </dl>

      <h2>Chunks</h2>
      <ChunkLegend />
      {chunks.length === 0 ? (
        <p className="muted">Not cut into chunks yet.</p>
      ) : (
        <table className="chunks">
          <thead>
            <tr>
              <th>Frames</th>
              <th className="bar-column">Progress</th>
              <th>Status</th>
              <th>Node</th>
              <th>Attempt</th>
              <th>Last error</th>
            </tr>
          </thead>
          <tbody>
            {chunks.map((chunk) => {
              const frames = framesOf(chunk);
              return (
                <tr key={chunk.id} data-chunk={chunk.id}>
                  <td>
                    {chunk.startFrame}–{chunk.endFrame}
                  </td>
                  <td className="bar-column">
                    <ChunkBar chunk={chunk} />
                    <span className="muted">
                      {frames.rendered}/{frames.total}
                    </span>
                  </td>
                  <td>
                    <StateBadge state={chunk.status} />
                  </td>
                  <td>{chunk.node ? <a href={`#/nodes/${chunk.node.id}`}>{chunk.node.name}</a> : '–'}</td>
                  <td>{chunk.attempt}</td>
                  <td>{chunk.lastError ?? ''}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}

      <h2>Nodes that failed this job</h2>
      {job.nodeBlocks.length === 0 ? (
        <p className="muted">None.</p>
      ) : (
        <ul>
          {job.nodeBlocks.map((block) => (
            <li key={block.nodeId}>
              <a href={`#/nodes/${block.nodeId}`}>{block.node?.name ?? shortId(block.nodeId)}</a>: {block.failures} failure
              {block.failures === 1 ? '' : 's'}
              {block.blockedAt ? `, kept off the job since ${time(block.blockedAt)}` : ''}
            </li>
          ))}
        </ul>
      )}

      <h2>Progress changes</h2>
      {seen > events.length && <p className="muted">The latest {events.length} of {seen} changes.</p>}
      <div className="scroll-box" tabIndex={0} aria-label="Progress changes, newest last">
        <table className="events">
          <thead>
            <tr>
              <th>Change</th>
              <th>Received</th>
              <th>Step</th>
              <th>Progress</th>
              <th>Message</th>
            </tr>
          </thead>
          <tbody>
            {events.map((event) => (
              <tr key={event.seq} data-seq={event.seq}>
                <td>{event.seq}</td>
                <td>{new Date(event.receivedAt).toLocaleTimeString()}</td>
                <td>{event.step}</td>
                <td>{event.progress} %</td>
                <td>{event.message ?? ''}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>

      <h2>Log</h2>
      {logs.length === 0 ? (
        <p className="muted">Nothing logged yet.</p>
      ) : (
        <ol className="log">
          {logs.map((line, index) => (
            <li key={`${line.timestamp}-${index}`} data-level={line.level}>
              <time>{new Date(line.timestamp).toLocaleTimeString()}</time> <span className="level">{line.level}</span> {line.message}
            </li>
          ))}
        </ol>
      )}
    </section>
  );
}
