// What the fleet tells its caller as it runs, and the counters it keeps.

export type CommandType =
  | 'prepare_replica'
  | 'render_chunk'
  | 'encode'
  | 'cancel_job'
  | 'close_ae'
  | 'restart'
  | 'update_software'
  | 'render_snapshot';

/** A command as the heartbeat answer carries it (see docs/agent-protocol.md). */
export interface AgentCommand {
  type: CommandType | string;
  command_id: string;
  job_id?: string;
  lease?: string;
  [field: string]: unknown;
}

export type FleetEvent =
  | { type: 'registered'; nodeId: string; name: string }
  | { type: 'online'; nodeId: string; agentVersion: string }
  /** ms: from sending the heartbeat to its answer. */
  | { type: 'heartbeat'; nodeId: string; commands: number; ms: number }
  | { type: 'command'; nodeId: string; command: AgentCommand }
  | { type: 'unsupported-command'; nodeId: string; command: AgentCommand }
  | { type: 'replica-ready'; nodeId: string; jobId: string }
  /** `sentAt`: when the report that was answered went out (Date.now()). */
  | { type: 'frame'; nodeId: string; jobId: string; frameJobId: string; frame: number; accepted: boolean; lease?: string; sentAt?: number }
  /** Every answer (or its absence, status 0) to a request, retries included; `endpoint`: the replica asked. */
  | { type: 'answer'; nodeId: string; method: string; path: string; status: number; endpoint: number }
  | { type: 'chunk-completed'; nodeId: string; jobId: string; frameJobId: string }
  | { type: 'chunk-failed'; nodeId: string; jobId: string; frameJobId: string; frame: number }
  | { type: 'crash'; nodeId: string; jobId: string; frameJobId: string; frame: number; action?: string }
  | { type: 'hang'; nodeId: string; jobId: string; frameJobId: string; frame: number }
  | { type: 'encoded'; nodeId: string; jobId: string; formats: string[] }
  | { type: 'snapshot-rendered'; nodeId: string; snapshotId: string }
  | { type: 'update-applied'; nodeId: string; updateId: string; agentVersion: string }
  | { type: 'abandoned'; nodeId: string; jobId?: string; reason: string }
  | { type: 'offline'; nodeId: string; reason: 'restart' }
  | { type: 'stale'; nodeId: string; method: string; path: string }
  | { type: 'error'; nodeId: string; method: string; path: string; status: number; code?: string; message?: string }
  | { type: 'killed'; nodeId: string }
  | { type: 'revived'; nodeId: string }
  | { type: 'late-report'; nodeId: string; path: string; status: number; code?: string };

export interface FleetStats {
  nodes: number;
  alive: number;
  /** Nodes whose last online report was accepted and that are not dead or restarting. */
  online: number;
  /** Heartbeats the service accepted. */
  heartbeats: number;
  /** Frames the nodes rendered, whatever the service answered to their reports. */
  framesRendered: number;
  /** Frame reports the service accepted. */
  framesAccepted: number;
  /** Work reports refused with 409 STALE_LEASE (the work was given to another node). */
  staleReports: number;
  /** Crash reports the service accepted. */
  crashesReported: number;
  /** Chunk completion and failure reports the service accepted. */
  chunksCompleted: number;
  chunksFailed: number;
  /** Chunks a node stopped working on without a word (the hang rate). */
  chunksHung: number;
  replicasReady: number;
  encodes: number;
  /** Stills rendered and reported complete (render_snapshot). */
  snapshots: number;
  updatesApplied: number;
  /** Late reports of revived nodes: how many were sent and how many were refused as stale. */
  lateReports: { sent: number; refusedStale: number };
  /** Commands executed, by type. */
  commands: Record<string, number>;
  /** Commands the simulator does not execute (left unacknowledged), by type. */
  unsupportedCommands: Record<string, number>;
  /** Refused or failed requests, by HTTP status ("network" when no answer came). */
  errors: Record<string, number>;
  requests: number;
  /** Requests sent again after no answer, 503 or 429 (each attempt also counts in requests). */
  retries: number;
}

export class Tally {
  heartbeats = 0;
  framesRendered = 0;
  framesAccepted = 0;
  staleReports = 0;
  crashesReported = 0;
  chunksCompleted = 0;
  chunksFailed = 0;
  chunksHung = 0;
  replicasReady = 0;
  encodes = 0;
  snapshots = 0;
  updatesApplied = 0;
  lateSent = 0;
  lateRefusedStale = 0;
  requests = 0;
  retries = 0;
  readonly commands: Record<string, number> = {};
  readonly unsupportedCommands: Record<string, number> = {};
  readonly errors: Record<string, number> = {};

  static bump(counts: Record<string, number>, key: string): void {
    counts[key] = (counts[key] ?? 0) + 1;
  }
}
