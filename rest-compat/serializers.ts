// Rows shaped into the contract's JSON: snake_case names exactly as the contract gives them,
// money as integer minor units, times as ISO 8601.
//
// The contract's nullability is kept as the original has it: a field it marks nullable is null
// when it has no value, any other field is then left out (`optional`), because callers written
// against the original read a field that is present as holding a value of its type.
import { percentDone, type RenderProgress } from '../src/domain/jobs/progress.ts';
import type { HealthSample, NodeHealth } from '../src/domain/nodes/health-history.ts';
import type { SnapshotView } from '../src/domain/snapshots/snapshot-service.ts';
import { waveDeadlineAt } from '../src/domain/updates/rollout-service.ts';
import type {
  Export,
  ExportFile,
  FrameJob,
  JobLog,
  NodeCrash,
  NodeUpdate,
  RenderJob,
  RenderNode,
  Rollout,
  RolloutTarget,
} from '../src/generated/prisma/client.ts';

const iso = (date: Date | null | undefined) => (date ? date.toISOString() : null);

/** A field the contract does not mark nullable: left out of the JSON when it has no value. */
const optional = <T>(value: T | null): T | undefined => value ?? undefined;

/** Exports store an empty key for a file that was never produced. */
const storedFile = (key: string) => (key === '' ? null : key);

export function toRestRenderJob(job: RenderJob & { export?: Pick<Export, 'id'> | null }) {
  return {
    id: job.id,
    saved_project_id: job.savedProjectId,
    name: job.name,
    step: job.step,
    render_progress: percentDone(job),
    priority_queue: job.priorityQueue,
    price_type: job.priceType,
    paid_price_minor: Number(job.paidPriceMinor),
    quality: job.quality,
    resolution: job.resolution,
    frame_rate: job.frameRate,
    duration_sec: job.durationSec,
    has_voiceover: job.hasVoiceover,
    image_preview_b64: job.imagePreviewB64,
    failed_message: job.failedMessage,
    export_id: job.export?.id ?? null,
    queued_at: iso(job.queuedAt),
    started_at: iso(job.startedAt),
    completed_at: iso(job.completedAt),
  };
}

export function toRestFrameJob(frameJob: FrameJob) {
  return {
    id: frameJob.id,
    node_id: optional(frameJob.nodeId),
    start_frame: frameJob.startFrame,
    end_frame: frameJob.endFrame,
    order_value: frameJob.orderValue,
    status: frameJob.status,
    frames_rendered: frameJob.framesRendered,
    frames_validated: frameJob.framesValidated,
    attempt: frameJob.attempt,
    last_error: frameJob.lastError,
  };
}

export function toRestSnapshot(snapshot: SnapshotView) {
  return {
    id: snapshot.id,
    saved_project_id: snapshot.savedProjectId,
    scene_key: snapshot.sceneKey,
    frame_number: snapshot.frameNumber,
    status: snapshot.status,
    image_url: snapshot.imageUrl,
    thumbnail_url: snapshot.thumbnailUrl,
    width: snapshot.width,
    height: snapshot.height,
    duration_ms: snapshot.durationMs,
    expires_at: optional(iso(snapshot.expiresAt)),
    requested_at: iso(snapshot.requestedAt),
    completed_at: iso(snapshot.completedAt),
  };
}

/** The answer to a snapshot request, whose `expires_at` the contract marks nullable. */
export function toRestSnapshotRequested(snapshot: SnapshotView) {
  return {
    snapshot_id: snapshot.id,
    status: snapshot.status,
    image_url: snapshot.imageUrl,
    thumbnail_url: snapshot.thumbnailUrl,
    expires_at: iso(snapshot.expiresAt),
  };
}

export function toRestExport(exported: Export) {
  return {
    id: exported.id,
    saved_project_id: exported.savedProjectId,
    path: exported.path,
    image: optional(storedFile(exported.image)),
    size_bytes: Number(exported.sizeBytes),
    duration_sec: exported.durationSec,
    width: exported.width,
    height: exported.height,
    file_extension: exported.fileExtension,
    file_type: exported.fileType,
    render_quality: exported.renderQuality,
    create_type: exported.createType,
    produce_date: iso(exported.produceDate),
    auto_delete_date: iso(exported.autoDeleteDate),
  };
}

export function toRestExportFile(file: ExportFile) {
  return {
    id: file.id,
    thumbnail: optional(storedFile(file.thumbnail)),
    path: file.path,
    size_bytes: Number(file.sizeBytes),
    file_type: file.fileType,
  };
}

export function toRestRenderJobDetail(job: RenderJob & { frameJobs: FrameJob[]; export: Export | null }) {
  return {
    ...toRestRenderJob(job),
    frame_jobs: job.frameJobs.map(toRestFrameJob),
    retry_count: job.retryCount,
    repair_attempts: job.repairAttempts,
    export: job.export ? toRestExport(job.export) : null,
  };
}

export function toRestNode(node: RenderNode & { _count: { templates: number } }) {
  return {
    id: node.id,
    name: node.name,
    region: node.region,
    node_ip: node.nodeIp,
    worker_port: node.workerPort,
    status: node.status,
    node_kind: node.nodeKind,
    owner_user_id: node.ownerUserId,
    current_ae_version: node.currentAeVersion,
    node_agent_version: optional(node.nodeAgentVersion),
    ram_gb: node.ramGb,
    cpu_cores: node.cpuCores,
    priority: node.priority,
    is_active: node.isActive,
    accepts_new_jobs: node.acceptsNewJobs,
    last_heartbeat_at: optional(iso(node.lastHeartbeatAt)),
    current_job_id: node.currentJobId,
    last_cpu_pct: node.lastCpuPct,
    last_ram_available_mb: node.lastRamAvailableMb,
    ae_running: node.aeRunning,
    cache_used_gb: node.cacheUsedGb,
    cached_template_count: node._count.templates,
    lifetime_task_count: Number(node.lifetimeTaskCount),
    lifetime_crash_count: node.lifetimeCrashCount,
    consecutive_failures: node.consecutiveFailures,
  };
}

export function toRestNodeDetail(node: RenderNode & { _count: { templates: number }; templates: { aepFileMd5: string }[] }) {
  return {
    ...toRestNode(node),
    available_ae_versions: node.availableAeVersions,
    cached_template_md5s: node.templates.map((template) => template.aepFileMd5),
    last_maintenance_at: optional(iso(node.lastMaintenanceAt)),
    next_maintenance_at: iso(node.nextMaintenanceAt),
  };
}

export function toRestRenderProgress(progress: RenderProgress) {
  return {
    job_id: progress.jobId,
    step: progress.step,
    progress: progress.progress,
    current_frame: progress.currentFrame,
    total_frames: progress.totalFrames,
    eta_seconds: progress.etaSeconds,
    preview_b64: progress.previewB64,
    active_nodes: progress.activeNodes,
    message: progress.message,
  };
}

export function toRestJobLog(line: JobLog) {
  return {
    timestamp: iso(line.timestamp),
    level: line.level,
    node_id: line.nodeId,
    message: line.message,
    meta: line.meta,
  };
}

export function toRestNodeHealth(health: NodeHealth) {
  return {
    node_id: health.nodeId,
    recorded_at: optional(iso(health.recordedAt)),
    status: health.status,
    cpu_pct: health.cpuPct,
    ram_available_mb: health.ramAvailableMb,
    ae_running: health.aeRunning,
    ae_memory_mb: health.aeMemoryMb,
    current_job_id: health.currentJobId,
    current_frame: health.currentFrame,
    cache_used_gb: health.cacheUsedGb,
  };
}

export function toRestNodeHealthSample(sample: HealthSample) {
  return { ...toRestNodeHealth(sample), bucket_seconds: sample.bucketSeconds };
}

export function toRestNodeCrash(crash: NodeCrash) {
  return {
    id: crash.id,
    node_id: crash.nodeId,
    render_job_id: crash.renderJobId,
    crashed_at: iso(crash.crashedAt),
    last_known_frame: crash.lastKnownFrame,
    crash_signal: crash.crashSignal,
    error_log: crash.errorLog,
    log_file_url: crash.logFileUrl,
    auto_recovered: crash.autoRecovered,
    recovery_action: optional(crash.recoveryAction),
    recovered_at: iso(crash.recoveredAt),
  };
}

export function toRestNodeUpdate(update: NodeUpdate, rolledOutToNodeIds: string[]) {
  return {
    id: update.id,
    update_file_name: update.updateFileName,
    update_number: update.updateNumber,
    description: update.description,
    target_ae_version: update.targetAeVersion,
    in_update_queue: update.inUpdateQueue,
    rolled_out_to_node_ids: rolledOutToNodeIds,
    create_date: iso(update.createDate),
  };
}

export function toRestRollout(rollout: Rollout & { targets: RolloutTarget[] }) {
  return {
    id: rollout.id,
    update_id: rollout.updateId,
    status: rollout.status,
    current_wave: rollout.currentWave,
    halt_reason: rollout.haltReason,
    wave_deadline_at: iso(waveDeadlineAt(rollout)),
    created_at: iso(rollout.createdAt),
    targets: rollout.targets.map((target) => ({
      node_id: target.nodeId,
      wave: target.wave,
      status: target.status,
      command_id: target.commandId,
      sent_at: iso(target.sentAt),
      applied_at: iso(target.appliedAt),
      skip_reason: target.skipReason,
    })),
  };
}
