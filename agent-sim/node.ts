// One simulated render node agent, speaking docs/agent-protocol.md.
//
// Memory and timers stay small because the benchmark runs thousands of these in one process: a
// node owns one heartbeat timer and at most one work promise (one After Effects, one piece of
// work at a time), and a short journal of the commands it has seen.
import { type AgentCommand, type FleetEvent, Tally } from './events.ts';
import { ABANDONED, type Answer, type Transport } from './http.ts';
import { dimensionsOf, placeholderFrameSize, placeholderOutput, placeholderStill, PREVIEW_PNG_B64, replicaOf } from './placeholders.ts';
import { between, type Random } from './random.ts';

export interface NodeBehaviour {
  frameMs: number;
  failureRate: number;
  crashRate: number;
  hangRate: number;
  /** Overrides the service's next_heartbeat_in_sec. */
  heartbeatSeconds?: number;
  aeVersion: string;
  templates: readonly string[];
}

export interface NodeContext {
  transport: Transport;
  behaviour: NodeBehaviour;
  tally: Tally;
  emit(event: FleetEvent): void;
}

export interface LateReport {
  path: string;
  status: number;
  code?: string;
}

interface Work {
  command: AgentCommand;
  /** The frame being rendered, for heartbeats and for the late report of a revived node. */
  frame?: number;
}

type Seen = 'acked' | 'unacked' | 'ignored';

const WORK_TYPES = new Set(['prepare_replica', 'render_chunk', 'encode', 'render_snapshot', 'update_software']);
/** Work whose result a node that died mid-way reports late when it comes back. */
const REPORTED_TYPES = new Set(['prepare_replica', 'render_chunk', 'encode']);
const CONTROL_TYPES = new Set(['cancel_job', 'close_ae', 'restart']);
const MD5 = /^[0-9a-f]{32}$/i;
const DEFAULT_HEARTBEAT_SECONDS = 5;
/** Long enough that the online report after a restart never repeats a signature of the same second. */
const RESTART_MS = 1_000;
const JOURNAL_SIZE = 128;
/** How long a request is sent again when no answer (or 503, 429) comes, as the agent protocol asks. */
const RETRY_FOR_MS = 30_000;
const MIN_RETRY_DELAY_MS = 1_000;
const AGENT_VERSION_BASE = '1.0';
/** A snapshot's still and its thumbnail, small: the benchmark's nodes keep them in memory. */
const STILL_SIZE = { width: 320, height: 180 };
const THUMBNAIL_SIZE = { width: 160, height: 90 };

const isText = (value: unknown): value is string => typeof value === 'string' && value.length > 0;
const isFrame = (value: unknown): value is number => Number.isInteger(value) && (value as number) >= 0;
const ok = (answer: Answer) => answer.status >= 200 && answer.status < 300;
const segment = (value: unknown) => encodeURIComponent(String(value));

function isValidCommand(command: AgentCommand): boolean {
  switch (command.type) {
    case 'prepare_replica':
    case 'encode':
      return isText(command.job_id) && isText(command.lease);
    case 'render_chunk':
      return (
        isText(command.job_id) &&
        isText(command.lease) &&
        isText(command.frame_job_id) &&
        isFrame(command.start_frame) &&
        isFrame(command.end_frame) &&
        command.end_frame >= command.start_frame
      );
    case 'render_snapshot':
      return isText(command.snapshot_id) && isText(command.lease);
    case 'cancel_job':
      return isText(command.job_id);
    case 'update_software':
      return isText(command.update_id);
    default:
      return true;
  }
}

function formatsOf(formats: unknown): string[] {
  if (!Array.isArray(formats) || formats.length === 0) return ['mp4'];
  return formats
    .map((format: unknown) => {
      if (typeof format === 'string') return format;
      const named = format as Record<string, unknown> | null;
      const name = named?.format ?? named?.file_type ?? named?.file_extension;
      return typeof name === 'string' ? name : undefined;
    })
    .filter(isText);
}

export class SimNode {
  alive = true;
  online = false;
  clockSkewSec = 0;
  private stopped = false;
  private serverHeartbeatSeconds = DEFAULT_HEARTBEAT_SECONDS;
  /** Changes when the node dies, comes back or restarts: a heartbeat chain of an earlier life stops. */
  private life = 0;
  /** Changes when the current work is abandoned: its promise stops at its next step. */
  private epoch = 0;
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> | undefined;
  private draining: Promise<void> | undefined;
  private readonly queue: AgentCommand[] = [];
  private current: Work | undefined;
  private wake: (() => void) | undefined;
  private pauseTimer: NodeJS.Timeout | undefined;
  private readonly journal = new Map<string, Seen>();
  private late: Work | undefined;
  private agentPatch = 0;
  private templates: readonly string[];

  constructor(
    readonly id: string,
    readonly agentKey: string,
    private readonly context: NodeContext,
    private readonly random: Random,
    private readonly noise: Random,
    /** The replica this node talks to first; it moves to the next one when no answer comes. */
    private endpoint = 0,
  ) {
    this.templates = context.behaviour.templates;
  }

  /** Alive with a piece of work in hand (rendering, encoding, preparing). */
  get working(): boolean {
    return this.alive && this.current !== undefined;
  }

  get agentVersion(): string {
    return `${AGENT_VERSION_BASE}.${this.agentPatch}`;
  }

  async start(): Promise<void> {
    const life = this.life;
    await this.comeOnline();
    // Spread the first heartbeats over one interval so a large fleet does not beat in step.
    if (life === this.life) this.schedule(this.noise() * this.intervalMs());
  }

  /** Dies abruptly: no further request, the work in hand is abandoned but remembered. */
  kill(): void {
    if (!this.alive) return;
    const work = this.current;
    this.late = work && REPORTED_TYPES.has(work.command.type) ? work : undefined;
    this.halt();
    this.context.emit({ type: 'killed', nodeId: this.id });
  }

  /** Comes back after a death: reports the work it had in hand once, then starts afresh. */
  async revive(): Promise<LateReport | undefined> {
    if (this.alive || this.stopped) throw new Error(`Node ${this.id} is not dead; only a killed node can be revived`);
    this.alive = true;
    const life = ++this.life;
    this.context.emit({ type: 'revived', nodeId: this.id });
    const late = this.late;
    this.late = undefined;
    const outcome = late ? await this.reportLate(late) : undefined;
    if (life !== this.life) return outcome;
    await this.comeOnline();
    if (life === this.life) this.schedule(this.intervalMs());
    return outcome;
  }

  /** Stops for good and resolves once no request of this node is outstanding. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.halt();
    this.late = undefined;
    await Promise.all([this.ticking, this.draining]);
  }

  private halt(): void {
    this.alive = false;
    this.online = false;
    this.life++;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.queue.length = 0;
    this.abandonCurrent();
  }

  // ------------------------------------------------------------------ requests

  /**
   * One request, sent again after a second (or Retry-After) while no answer comes or the service
   * answers 503 or 429, as the agent protocol asks; without an answer, to the next replica.
   */
  private async call(method: string, path: string, body?: unknown): Promise<Answer> {
    const { transport, tally } = this.context;
    const deadline = Date.now() + RETRY_FOR_MS;
    for (;;) {
      const answer = await transport.signed(this, method, path, body, () => this.alive, this.endpoint);
      if (answer.failure === ABANDONED) return answer;
      tally.requests++;
      this.context.emit({ type: 'answer', nodeId: this.id, method, path, status: answer.status, endpoint: this.endpoint });
      const retryable = answer.status === 0 || answer.status === 503 || answer.status === 429;
      if (!retryable || !this.alive || Date.now() > deadline) return this.answered(method, path, answer);
      tally.retries++;
      if (answer.status === 0) this.endpoint = (this.endpoint + 1) % transport.endpoints;
      await new Promise((resolve) => setTimeout(resolve, Math.max(MIN_RETRY_DELAY_MS, (answer.retryAfterSec ?? 0) * 1000)));
      if (!this.alive) return { status: 0, body: undefined, failure: ABANDONED };
    }
  }

  /** Counts the final answer of a request: stale leases and errors are tallied and reported. */
  private answered(method: string, path: string, answer: Answer): Answer {
    const { tally, emit } = this.context;
    if (ok(answer)) return answer;
    if (answer.status === 409 && answer.code === 'STALE_LEASE') {
      tally.staleReports++;
      emit({ type: 'stale', nodeId: this.id, method, path });
      return answer;
    }
    Tally.bump(tally.errors, answer.status === 0 ? 'network' : String(answer.status));
    const message = answer.failure ?? (answer.body as { error?: { message?: string } } | undefined)?.error?.message;
    emit({
      type: 'error',
      nodeId: this.id,
      method,
      path,
      status: answer.status,
      ...(answer.code ? { code: answer.code } : {}),
      ...(message ? { message } : {}),
    });
    return answer;
  }

  private onlineBody() {
    const { aeVersion } = this.context.behaviour;
    return {
      node_agent_version: this.agentVersion,
      current_ae_version: aeVersion,
      available_ae_versions: [aeVersion],
      ram_gb: 64,
      cpu_cores: 16,
      cache_used_gb: this.templates.length,
      cached_template_md5s: this.templates,
    };
  }

  private async comeOnline(): Promise<void> {
    const life = this.life;
    const answer = await this.call('POST', `/v1/internal/nodes/${this.id}/online`, this.onlineBody());
    if (life !== this.life || !ok(answer)) return;
    this.online = true;
    this.adoptInterval(answer);
    this.context.emit({ type: 'online', nodeId: this.id, agentVersion: this.agentVersion });
  }

  // ------------------------------------------------------------------ heartbeats and commands

  private intervalMs(): number {
    return (this.context.behaviour.heartbeatSeconds ?? this.serverHeartbeatSeconds) * 1000;
  }

  private adoptInterval(answer: Answer): void {
    const next = (answer.body as { next_heartbeat_in_sec?: unknown } | undefined)?.next_heartbeat_in_sec;
    if (typeof next === 'number' && next > 0) this.serverHeartbeatSeconds = next;
  }

  private schedule(delayMs: number): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      const tick = this.tick();
      this.ticking = tick;
      void tick.finally(() => {
        if (this.ticking === tick) this.ticking = undefined;
      });
    }, delayMs);
  }

  private async tick(): Promise<void> {
    const life = this.life;
    try {
      if (this.online) await this.heartbeat(life);
      else await this.comeOnline();
    } catch {
      Tally.bump(this.context.tally.errors, 'internal');
    }
    if (life === this.life) this.schedule(this.intervalMs());
  }

  private health() {
    const work = this.current;
    const jobId = work && isText(work.command.job_id) ? work.command.job_id : null;
    return {
      recorded_at: new Date().toISOString(),
      status: jobId ? 'Busy' : 'Online',
      cpu_pct: jobId ? between(this.noise, 70, 99) : between(this.noise, 1, 12),
      ram_available_mb: between(this.noise, 8_000, 48_000),
      ae_running: jobId !== null,
      ae_memory_mb: jobId ? between(this.noise, 2_500, 7_000) : 0,
      current_job_id: jobId,
      current_frame: work?.frame ?? null,
      cache_used_gb: this.templates.length,
    };
  }

  private async heartbeat(life: number): Promise<void> {
    const started = performance.now();
    const answer = await this.call('POST', `/v1/internal/nodes/${this.id}/heartbeat`, this.health());
    const ms = performance.now() - started;
    if (life !== this.life || !ok(answer)) return;
    this.context.tally.heartbeats++;
    this.adoptInterval(answer);
    const pending = (answer.body as { pending_commands?: unknown } | undefined)?.pending_commands;
    const commands = Array.isArray(pending) ? (pending as AgentCommand[]) : [];
    this.context.emit({ type: 'heartbeat', nodeId: this.id, commands: commands.length, ms });
    for (const command of commands) {
      await this.receive(command, life);
      if (life !== this.life) return;
    }
  }

  private remember(commandId: string, seen: Seen): void {
    this.journal.delete(commandId);
    this.journal.set(commandId, seen);
    if (this.journal.size > JOURNAL_SIZE) this.journal.delete(this.journal.keys().next().value as string);
  }

  private ack(command: AgentCommand): Promise<Answer> {
    return this.call('POST', `/v1/internal/nodes/${this.id}/commands/${segment(command.command_id)}/ack`);
  }

  /** Commands come in every heartbeat until acknowledged; each is executed once all the same. */
  private async receive(command: AgentCommand, life: number): Promise<void> {
    const { tally, emit } = this.context;
    if (!command || typeof command !== 'object' || !isText(command.command_id) || !isText(command.type)) {
      Tally.bump(tally.errors, 'invalid-command');
      return;
    }
    const seen = this.journal.get(command.command_id);
    if (seen === 'acked' || seen === 'ignored') return;
    if (seen === 'unacked') {
      if (ok(await this.ack(command)) && life === this.life) this.remember(command.command_id, 'acked');
      return;
    }
    if (!WORK_TYPES.has(command.type) && !CONTROL_TYPES.has(command.type)) {
      // Acknowledging work it will never do would leave the service waiting for nothing.
      this.remember(command.command_id, 'ignored');
      Tally.bump(tally.unsupportedCommands, command.type);
      emit({ type: 'unsupported-command', nodeId: this.id, command });
      return;
    }
    if (!isValidCommand(command)) {
      this.remember(command.command_id, 'ignored');
      Tally.bump(tally.errors, 'invalid-command');
      return;
    }
    const answer = await this.ack(command);
    if (life !== this.life) return;
    // 409: the command is no longer the node's to run (its lease moved on).
    this.remember(command.command_id, ok(answer) ? 'acked' : answer.status === 409 ? 'ignored' : 'unacked');
    if (answer.status !== 409) this.execute(command);
  }

  private execute(command: AgentCommand): void {
    const { tally, emit } = this.context;
    if (WORK_TYPES.has(command.type)) {
      this.queue.push(command);
      this.drain();
      return;
    }
    Tally.bump(tally.commands, command.type);
    emit({ type: 'command', nodeId: this.id, command });
    if (command.type === 'cancel_job') {
      for (let index = this.queue.length - 1; index >= 0; index--) {
        if (this.queue[index]?.job_id === command.job_id) this.queue.splice(index, 1);
      }
      if (this.current?.command.job_id === command.job_id) this.abandonCurrent('cancel_job');
    } else if (command.type === 'close_ae') {
      this.abandonCurrent('close_ae');
    } else {
      this.restart();
    }
  }

  /** The machine reboots: every piece of work is lost, and the agent comes online again. */
  private restart(): void {
    this.life++;
    this.online = false;
    this.queue.length = 0;
    this.abandonCurrent('restart');
    this.context.emit({ type: 'offline', nodeId: this.id, reason: 'restart' });
    this.schedule(RESTART_MS);
  }

  /** Also interrupts a pause that belongs to no work (After Effects resetting after a crash). */
  private abandonCurrent(reason?: string): void {
    const work = this.current;
    this.current = undefined;
    this.epoch++;
    clearTimeout(this.pauseTimer);
    this.pauseTimer = undefined;
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
    if (work && reason) {
      const jobId = work.command.job_id;
      this.context.emit({ type: 'abandoned', nodeId: this.id, ...(jobId ? { jobId } : {}), reason });
    }
  }

  // ------------------------------------------------------------------ work

  private drain(): void {
    if (this.draining) return;
    const run = async () => {
      while (this.alive && this.queue.length > 0) {
        const work: Work = { command: this.queue.shift() as AgentCommand };
        this.current = work;
        Tally.bump(this.context.tally.commands, work.command.type);
        this.context.emit({ type: 'command', nodeId: this.id, command: work.command });
        try {
          await this.perform(work, this.epoch);
        } catch {
          Tally.bump(this.context.tally.errors, 'internal');
        }
        if (this.current === work) this.current = undefined;
      }
    };
    this.draining = run().finally(() => {
      this.draining = undefined;
      if (this.alive && this.queue.length > 0) this.drain();
    });
  }

  private abandoned(epoch: number): boolean {
    return epoch !== this.epoch || !this.alive;
  }

  /** Waits, unless the work is abandoned first. The work promise's only timer. */
  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.wake = resolve;
      this.pauseTimer = setTimeout(() => {
        this.wake = undefined;
        this.pauseTimer = undefined;
        resolve();
      }, ms);
    });
  }

  /** A hung After Effects: nothing happens until the work is abandoned (close_ae, cancel_job, restart). */
  private hold(): Promise<void> {
    return new Promise((resolve) => {
      this.wake = resolve;
    });
  }

  private perform(work: Work, epoch: number): Promise<void> {
    switch (work.command.type) {
      case 'prepare_replica':
        return this.prepare(work, epoch);
      case 'render_chunk':
        return this.render(work, epoch);
      case 'encode':
        return this.encode(work, epoch);
      case 'render_snapshot':
        return this.snapshot(work, epoch);
      default:
        return this.update(work, epoch);
    }
  }

  private replicaBody(command: AgentCommand) {
    const replica = replicaOf(String(command.job_id), String(command.lease));
    return { node_id: this.id, replica_path: replica.path, replica_md5: replica.md5, lease: command.lease };
  }

  private async prepare(work: Work, epoch: number): Promise<void> {
    const { command } = work;
    const { frameMs } = this.context.behaviour;
    const md5 = typeof command.aep_file_md5 === 'string' ? command.aep_file_md5.toLowerCase() : undefined;
    if (md5 && MD5.test(md5) && !this.templates.includes(md5)) {
      await this.pause(frameMs * 2);
      if (this.abandoned(epoch)) return;
      this.templates = [...this.templates, md5];
      await this.call('POST', `/v1/internal/nodes/${this.id}/cache-update`, {
        action: 'Downloaded',
        aep_file_md5: md5,
        ...(isText(command.saved_project_id) ? { project_id: command.saved_project_id } : {}),
        file_size_bytes: 48 * 1024 * 1024,
        cache_used_gb: this.templates.length,
      });
      if (this.abandoned(epoch)) return;
    }
    await this.pause(frameMs * 5);
    if (this.abandoned(epoch)) return;
    const answer = await this.call(
      'POST',
      `/v1/internal/render/jobs/${segment(command.job_id)}/replica-ready`,
      this.replicaBody(command),
    );
    if (!ok(answer)) return;
    this.context.tally.replicasReady++;
    this.context.emit({ type: 'replica-ready', nodeId: this.id, jobId: String(command.job_id) });
  }

  private async render(work: Work, epoch: number): Promise<void> {
    const { command } = work;
    const { behaviour, tally, emit } = this.context;
    const jobId = String(command.job_id);
    const frameJobId = String(command.frame_job_id);
    const start = command.start_frame as number;
    const end = command.end_frame as number;
    const base = `/v1/internal/render/jobs/${segment(jobId)}`;
    // Both draws happen for every chunk so that one chunk's fate never shifts the next one's.
    const roll = this.random();
    const strikeAt = start + Math.floor(this.random() * (end - start + 1));
    const { failureRate, crashRate, hangRate } = behaviour;
    const fate =
      roll < failureRate
        ? 'fail'
        : roll < failureRate + crashRate
          ? 'crash'
          : roll < failureRate + crashRate + hangRate
            ? 'hang'
            : 'render';

    for (let frame = start; frame <= end; frame++) {
      work.frame = frame;
      if (frame === strikeAt && fate !== 'render') return this.strike(fate, work, epoch);
      await this.pause(behaviour.frameMs);
      if (this.abandoned(epoch)) return;
      const fileSize = placeholderFrameSize(between(this.random, 512, 4096));
      tally.framesRendered++;
      const answer = await this.call('POST', `${base}/frames`, {
        frame_job_id: frameJobId,
        frame_number: frame,
        file_size_bytes: fileSize,
        completed_at: new Date().toISOString(),
        lease: command.lease,
        ...(frame === start ? { preview_b64: PREVIEW_PNG_B64 } : {}),
      });
      // Counted even when the node died meanwhile: the service has the frame all the same.
      if (ok(answer)) tally.framesAccepted++;
      emit({ type: 'frame', nodeId: this.id, jobId, frameJobId, frame, accepted: ok(answer), lease: command.lease, sentAt: answer.sentAt });
      // 409: the chunk is no longer this node's (stale lease) or the job no longer wants frames.
      if (this.abandoned(epoch) || answer.status === 409) return;
    }
    const answer = await this.call('POST', `${base}/chunks/${segment(frameJobId)}/complete`, { lease: command.lease });
    if (!ok(answer)) return;
    tally.chunksCompleted++;
    emit({ type: 'chunk-completed', nodeId: this.id, jobId, frameJobId });
  }

  private async strike(fate: 'fail' | 'crash' | 'hang', work: Work, epoch: number): Promise<void> {
    const { command } = work;
    const { tally, emit } = this.context;
    const jobId = String(command.job_id);
    const frameJobId = String(command.frame_job_id);
    const frame = work.frame as number;
    const base = `/v1/internal/render/jobs/${segment(jobId)}`;
    if (fate === 'hang') {
      tally.chunksHung++;
      emit({ type: 'hang', nodeId: this.id, jobId, frameJobId, frame });
      return this.hold();
    }
    if (fate === 'fail') {
      const answer = await this.call('POST', `${base}/chunks/${segment(frameJobId)}/fail`, {
        lease: command.lease,
        error: `Simulated render error at frame ${frame}`,
      });
      if (!ok(answer)) return;
      tally.chunksFailed++;
      emit({ type: 'chunk-failed', nodeId: this.id, jobId, frameJobId, frame });
      return;
    }
    const answer = await this.call('POST', `${base}/crash`, {
      node_id: this.id,
      frame_job_id: frameJobId,
      ...(frame > (command.start_frame as number) ? { last_known_frame: frame - 1 } : {}),
      crash_signal: 'EXCEPTION_ACCESS_VIOLATION',
      ae_version: this.context.behaviour.aeVersion,
      error_log_tail: `aerender: simulated crash while rendering frame ${frame}`,
      lease: command.lease,
    });
    if (!ok(answer)) return;
    const action = (answer.body as { action_recommended?: unknown } | undefined)?.action_recommended;
    tally.crashesReported++;
    emit({ type: 'crash', nodeId: this.id, jobId, frameJobId, frame, ...(typeof action === 'string' ? { action } : {}) });
    if (this.abandoned(epoch)) return;
    if (action === 'RestartNode') {
      this.restart();
    } else if (action === 'ResetAndRestart') {
      // The chunk is not resumed on the node's own initiative: the service re-issues the work.
      this.current = undefined;
      await this.pause(this.context.behaviour.frameMs * 5);
    }
  }

  private encodedBody(command: AgentCommand) {
    const positive = (value: unknown): value is number => typeof value === 'number' && value > 0;
    const frameRate = positive(command.frame_rate) ? command.frame_rate : 30;
    const totalFrames = positive(command.total_frames) ? command.total_frames : 1;
    return {
      lease: command.lease,
      ...dimensionsOf(command.resolution),
      duration_sec: positive(command.duration_sec)
        ? command.duration_sec
        : Math.round((totalFrames / frameRate) * 1000) / 1000,
      formats: formatsOf(command.formats),
    };
  }

  private async encode(work: Work, epoch: number): Promise<void> {
    const { command } = work;
    const jobId = String(command.job_id);
    const base = `/v1/internal/render/jobs/${segment(jobId)}`;
    const body = this.encodedBody(command);
    await this.pause(this.context.behaviour.frameMs * 3);
    if (this.abandoned(epoch)) return;
    const lease = encodeURIComponent(String(command.lease));
    for (const format of body.formats) {
      const bytes = placeholderOutput(jobId, format, isFrame(command.total_frames) ? command.total_frames : 0);
      const answer = await this.call('PUT', `${base}/outputs/${segment(format)}?lease=${lease}`, bytes);
      if (this.abandoned(epoch) || answer.status === 409) return;
    }
    const answer = await this.call('POST', `${base}/encoded`, body);
    if (!ok(answer)) return;
    this.context.tally.encodes++;
    this.context.emit({ type: 'encoded', nodeId: this.id, jobId, formats: body.formats });
  }

  /** Renders one still (opening the project costs a frame), uploads it and its thumbnail, reports it done. */
  private async snapshot(work: Work, epoch: number): Promise<void> {
    const { command } = work;
    const snapshotId = String(command.snapshot_id);
    const base = `/v1/internal/snapshots/${segment(snapshotId)}`;
    const started = performance.now();
    await this.pause(this.context.behaviour.frameMs * 2);
    if (this.abandoned(epoch)) return;
    const seed = `${command.aep_file_md5}:${command.scene_key}:${command.frame_number}`;
    const lease = encodeURIComponent(String(command.lease));
    for (const [file, size] of [['image', STILL_SIZE], ['thumbnail', THUMBNAIL_SIZE]] as const) {
      const answer = await this.call('PUT', `${base}/${file}?lease=${lease}`, placeholderStill(seed, size));
      if (this.abandoned(epoch) || answer.status === 409) return;
    }
    const answer = await this.call('POST', `${base}/complete`, {
      lease: command.lease,
      ...STILL_SIZE,
      duration_ms: Math.round(performance.now() - started),
    });
    if (!ok(answer)) return;
    this.context.tally.snapshots++;
    this.context.emit({ type: 'snapshot-rendered', nodeId: this.id, snapshotId });
  }

  /** Installs, restarts the agent (a fresh online report with the new version), confirms. */
  private async update(work: Work, epoch: number): Promise<void> {
    const updateId = String(work.command.update_id);
    await this.pause(Math.max(RESTART_MS, this.context.behaviour.frameMs * 5));
    if (this.abandoned(epoch)) return;
    this.agentPatch++;
    await this.call('POST', `/v1/internal/nodes/${this.id}/online`, this.onlineBody());
    if (this.abandoned(epoch)) return;
    const answer = await this.call('POST', `/v1/internal/nodes/${this.id}/updates/${segment(updateId)}/applied`, {
      node_agent_version: this.agentVersion,
    });
    if (!ok(answer)) return;
    this.context.tally.updatesApplied++;
    this.context.emit({ type: 'update-applied', nodeId: this.id, updateId, agentVersion: this.agentVersion });
  }

  /** The report a node that died mid-work would send when it comes back: the step it had finished. */
  private async reportLate(work: Work): Promise<LateReport> {
    const { command } = work;
    const base = `/v1/internal/render/jobs/${segment(command.job_id)}`;
    let path: string;
    let body: unknown;
    if (command.type === 'render_chunk') {
      path = `${base}/frames`;
      body = {
        frame_job_id: command.frame_job_id,
        frame_number: work.frame ?? command.start_frame,
        file_size_bytes: placeholderFrameSize(2048),
        completed_at: new Date().toISOString(),
        lease: command.lease,
      };
    } else if (command.type === 'prepare_replica') {
      path = `${base}/replica-ready`;
      body = this.replicaBody(command);
    } else {
      path = `${base}/encoded`;
      body = this.encodedBody(command);
    }
    const { tally, emit } = this.context;
    tally.lateSent++;
    const answer = await this.call('POST', path, body);
    if (answer.status === 409 && answer.code === 'STALE_LEASE') tally.lateRefusedStale++;
    emit({ type: 'late-report', nodeId: this.id, path, status: answer.status, ...(answer.code ? { code: answer.code } : {}) });
    return { path, status: answer.status, ...(answer.code ? { code: answer.code } : {}) };
  }
}
