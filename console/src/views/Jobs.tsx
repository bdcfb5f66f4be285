import { useEffect, useMemo, useState } from 'react';
import { JOBS, JOBS_CHANGED } from '../documents.ts';
import { useChanges, useQuery, useThrottled } from '../hooks.ts';
import { Choice } from '../parts/Choice.tsx';
import { ago, shortId } from '../parts/format.ts';
import { JOB_STEPS, StateBadge } from '../parts/status.tsx';
import { useSession } from '../session.tsx';

const PAGE = 100;

interface Job {
  id: string;
  name: string;
  userId: string;
  step: string;
  renderProgress: number;
  priorityQueue: string;
  priceType: string;
  totalFrames: number;
  queuedAt: string;
  startedAt: string | null;
  completedAt: string | null;
}

const QUEUE_ORDER: Record<string, number> = { Priority: 0, Standard: 1, Background: 2 };

export function Jobs() {
  const { live } = useSession();
  const [step, setStep] = useState('');
  // The feed brings every change of every job; the poll is the backstop for a missed one.
  const jobs = useQuery<{ renderJobs: { edges: { node: Job }[] } }>(JOBS, { status: step || null, first: PAGE }, 15_000);
  const refetch = useThrottled(jobs.refetch, 1_000);
  const rows = useMemo(() => jobs.data?.renderJobs.edges.map(({ node }) => node), [jobs.data]);
  const [all, sawChange] = useChanges(rows, jobs.askedAt);

  useEffect(
    () =>
      live.follow<{ renderJobUpdated: Job }>(JOBS_CHANGED, () => ({}), {
        next: ({ renderJobUpdated }) => {
          sawChange(renderJobUpdated);
          // A job the list does not hold yet (just submitted) comes with the next answer.
          refetch();
        },
        resumed: jobs.refetch,
      }),
    [live, jobs.refetch, refetch, sawChange],
  );

  const steps = step ? [step] : [...JOB_STEPS];

  return (
    <section aria-labelledby="queue-title">
      <h1 id="queue-title">Queue and renders</h1>
      <div className="filters">
        <Choice label="Step" value={step} options={JOB_STEPS} onChange={setStep} />
        <span className="muted">The latest {PAGE} jobs, live.</span>
      </div>
      {jobs.error && <p role="alert" className="error">{jobs.error.message}</p>}
      {!jobs.data && !jobs.error && <p>Loading the queue…</p>}
      {jobs.data &&
        steps.map((name) => {
          const members = all
            .filter((job) => job.step === name)
            .sort((a, b) => (QUEUE_ORDER[a.priorityQueue] ?? 9) - (QUEUE_ORDER[b.priorityQueue] ?? 9) || a.queuedAt.localeCompare(b.queuedAt));
          if (members.length === 0 && step === '') return null;
          return (
            <section key={name} className="step-group" aria-label={`${name} jobs`}>
              <h2>
                <StateBadge state={name} /> <span className="muted">({members.length})</span>
              </h2>
              <table className="jobs">
                <thead>
                  <tr>
                    <th>Job</th>
                    <th>Name</th>
                    <th>Queue</th>
                    <th>Owner</th>
                    <th>Price</th>
                    <th>Progress</th>
                    <th>Queued</th>
                  </tr>
                </thead>
                <tbody>
                  {members.map((job) => (
                    <tr key={job.id} data-job={job.id} data-step={job.step}>
                      <td>
                        <a href={`#/jobs/${job.id}`}>{shortId(job.id)}</a>
                      </td>
                      <td>{job.name}</td>
                      <td>{job.priorityQueue}</td>
                      <td title={job.userId}>{shortId(job.userId)}</td>
                      <td>{job.priceType}</td>
                      <td>
                        <progress max={100} value={job.renderProgress} aria-label={`${job.renderProgress} %`} /> {job.renderProgress} %
                      </td>
                      <td>{ago(job.queuedAt)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </section>
          );
        })}
    </section>
  );
}
