-- CreateSchema
CREATE SCHEMA IF NOT EXISTS "public";

-- CreateEnum
CREATE TYPE "JobStep" AS ENUM ('Queued', 'Preparing', 'Rendering', 'Encoding', 'Completed', 'Failed', 'Cancelled');

-- CreateEnum
CREATE TYPE "Quality" AS ENUM ('Low', 'Medium', 'High', 'Full', 'Lossless');

-- CreateEnum
CREATE TYPE "Resolution" AS ENUM ('HD', 'FullHD', 'TwoK', 'FourK');

-- CreateEnum
CREATE TYPE "PriceType" AS ENUM ('Free', 'Preview', 'Cash', 'Plan', 'Snapshot', 'Reseller');

-- CreateEnum
CREATE TYPE "PriorityQueue" AS ENUM ('Background', 'Standard', 'Priority');

-- CreateEnum
CREATE TYPE "FrameJobStatus" AS ENUM ('Pending', 'Assigned', 'Rendering', 'Completed', 'Failed', 'Cancelled');

-- CreateEnum
CREATE TYPE "LogLevel" AS ENUM ('debug', 'info', 'warn', 'error');

-- CreateEnum
CREATE TYPE "NodeStatus" AS ENUM ('Registered', 'Online', 'Busy', 'Offline', 'Maintenance', 'Updating');

-- CreateEnum
CREATE TYPE "NodeKind" AS ENUM ('Farm', 'Dedicated', 'Private');

-- CreateEnum
CREATE TYPE "TemplateCacheState" AS ENUM ('Downloaded', 'Verified', 'Failed');

-- CreateEnum
CREATE TYPE "CrashAction" AS ENUM ('ResetAndRestart', 'ReassignWork', 'RestartNode');

-- CreateEnum
CREATE TYPE "CommandType" AS ENUM ('render_chunk', 'prepare_replica', 'encode', 'render_snapshot', 'cancel_job', 'close_ae', 'restart', 'update_software');

-- CreateEnum
CREATE TYPE "CommandStatus" AS ENUM ('Pending', 'Acknowledged', 'Completed', 'Failed', 'Superseded');

-- CreateEnum
CREATE TYPE "SnapshotStatus" AS ENUM ('Pending', 'Rendering', 'Cached', 'Failed');

-- CreateEnum
CREATE TYPE "RolloutStatus" AS ENUM ('InProgress', 'Completed', 'Halted');

-- CreateEnum
CREATE TYPE "RolloutTargetStatus" AS ENUM ('Waiting', 'Sent', 'Applied', 'Failed');

-- CreateEnum
CREATE TYPE "LedgerEntryKind" AS ENUM ('Credit', 'Charge', 'Refund');

-- CreateTable
CREATE TABLE "saved_projects" (
    "id" UUID NOT NULL,
    "owner_user_id" UUID,
    "name" TEXT NOT NULL,
    "duration_sec" DOUBLE PRECISION NOT NULL,
    "has_voiceover" BOOLEAN NOT NULL DEFAULT false,
    "aep_file_md5" TEXT,
    "ae_version" TEXT,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "saved_projects_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "render_jobs" (
    "id" UUID NOT NULL,
    "user_id" UUID NOT NULL,
    "saved_project_id" UUID NOT NULL,
    "name" TEXT NOT NULL,
    "step" "JobStep" NOT NULL DEFAULT 'Queued',
    "render_progress" INTEGER NOT NULL DEFAULT 0,
    "priority_queue" "PriorityQueue" NOT NULL DEFAULT 'Standard',
    "price_type" "PriceType" NOT NULL,
    "paid_price_minor" BIGINT NOT NULL DEFAULT 0,
    "tip_minor" BIGINT NOT NULL DEFAULT 0,
    "refunded_minor" BIGINT NOT NULL DEFAULT 0,
    "quality" "Quality" NOT NULL,
    "resolution" "Resolution" NOT NULL,
    "frame_rate" INTEGER NOT NULL,
    "duration_sec" DOUBLE PRECISION NOT NULL,
    "total_frames" INTEGER NOT NULL,
    "frames_rendered" INTEGER NOT NULL DEFAULT 0,
    "has_voiceover" BOOLEAN NOT NULL DEFAULT false,
    "aep_file_md5" TEXT,
    "ae_version" TEXT,
    "discount_code" TEXT,
    "support_flatrender" BOOLEAN NOT NULL DEFAULT false,
    "tell_me_when_done" BOOLEAN NOT NULL DEFAULT false,
    "preferred_region" TEXT,
    "image_preview_b64" TEXT,
    "failed_message" TEXT,
    "cancel_reason" TEXT,
    "retry_count" INTEGER NOT NULL DEFAULT 0,
    "repair_attempts" INTEGER NOT NULL DEFAULT 0,
    "retried_from_id" UUID,
    "replica_path" TEXT,
    "replica_md5" TEXT,
    "chunk_size" INTEGER,
    "queued_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "started_at" TIMESTAMPTZ(3),
    "completed_at" TIMESTAMPTZ(3),
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "render_jobs_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "frame_jobs" (
    "id" UUID NOT NULL,
    "render_job_id" UUID NOT NULL,
    "node_id" UUID,
    "start_frame" INTEGER NOT NULL,
    "end_frame" INTEGER NOT NULL,
    "order_value" INTEGER NOT NULL,
    "status" "FrameJobStatus" NOT NULL DEFAULT 'Pending',
    "frames_rendered" INTEGER NOT NULL DEFAULT 0,
    "frames_validated" INTEGER NOT NULL DEFAULT 0,
    "attempt" INTEGER NOT NULL DEFAULT 0,
    "lease_token" TEXT,
    "last_error" TEXT,
    "assigned_at" TIMESTAMPTZ(3),
    "completed_at" TIMESTAMPTZ(3),
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "frame_jobs_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "frames" (
    "render_job_id" UUID NOT NULL,
    "frame_number" INTEGER NOT NULL,
    "frame_job_id" UUID,
    "node_id" UUID,
    "rendered" BOOLEAN NOT NULL DEFAULT false,
    "validated" BOOLEAN NOT NULL DEFAULT false,
    "file_size_bytes" BIGINT,
    "completed_at" TIMESTAMPTZ(3),

    CONSTRAINT "frames_pkey" PRIMARY KEY ("render_job_id","frame_number")
);

-- CreateTable
CREATE TABLE "job_logs" (
    "id" BIGSERIAL NOT NULL,
    "render_job_id" UUID NOT NULL,
    "timestamp" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "level" "LogLevel" NOT NULL,
    "node_id" UUID,
    "message" TEXT NOT NULL,
    "meta" JSONB NOT NULL DEFAULT '{}',

    CONSTRAINT "job_logs_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "render_nodes" (
    "id" UUID NOT NULL,
    "name" TEXT NOT NULL,
    "region" TEXT NOT NULL,
    "node_ip" TEXT NOT NULL,
    "worker_port" INTEGER NOT NULL,
    "status" "NodeStatus" NOT NULL DEFAULT 'Registered',
    "node_kind" "NodeKind" NOT NULL DEFAULT 'Farm',
    "owner_user_id" UUID,
    "current_ae_version" TEXT NOT NULL,
    "available_ae_versions" TEXT[] DEFAULT ARRAY[]::TEXT[],
    "node_agent_version" TEXT,
    "ram_gb" INTEGER NOT NULL DEFAULT 0,
    "cpu_cores" INTEGER NOT NULL DEFAULT 0,
    "priority" INTEGER NOT NULL DEFAULT 0,
    "is_active" BOOLEAN NOT NULL DEFAULT true,
    "accepts_new_jobs" BOOLEAN NOT NULL DEFAULT true,
    "last_heartbeat_at" TIMESTAMPTZ(3),
    "current_job_id" UUID,
    "current_frame" INTEGER,
    "last_cpu_pct" INTEGER NOT NULL DEFAULT 0,
    "last_ram_available_mb" INTEGER NOT NULL DEFAULT 0,
    "ae_running" BOOLEAN NOT NULL DEFAULT false,
    "cache_used_gb" INTEGER NOT NULL DEFAULT 0,
    "lifetime_task_count" BIGINT NOT NULL DEFAULT 0,
    "lifetime_crash_count" INTEGER NOT NULL DEFAULT 0,
    "consecutive_failures" INTEGER NOT NULL DEFAULT 0,
    "last_maintenance_at" TIMESTAMPTZ(3),
    "next_maintenance_at" TIMESTAMPTZ(3),
    "maintenance_reason" TEXT,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "render_nodes_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "node_template_cache" (
    "node_id" UUID NOT NULL,
    "aep_file_md5" TEXT NOT NULL,
    "project_id" UUID,
    "file_size_bytes" BIGINT,
    "state" "TemplateCacheState" NOT NULL,
    "error_message" TEXT,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "node_template_cache_pkey" PRIMARY KEY ("node_id","aep_file_md5")
);

-- CreateTable
CREATE TABLE "node_health_samples" (
    "id" BIGSERIAL NOT NULL,
    "node_id" UUID NOT NULL,
    "recorded_at" TIMESTAMPTZ(3) NOT NULL,
    "bucket_seconds" INTEGER NOT NULL DEFAULT 0,
    "status" "NodeStatus" NOT NULL,
    "cpu_pct" INTEGER NOT NULL,
    "ram_available_mb" INTEGER NOT NULL,
    "ae_running" BOOLEAN NOT NULL,
    "current_job_id" UUID,
    "current_frame" INTEGER,
    "cache_used_gb" INTEGER NOT NULL,

    CONSTRAINT "node_health_samples_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "node_crashes" (
    "id" UUID NOT NULL,
    "node_id" UUID NOT NULL,
    "render_job_id" UUID,
    "frame_job_id" UUID,
    "crashed_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "last_known_frame" INTEGER,
    "crash_signal" TEXT NOT NULL DEFAULT '',
    "ae_version" TEXT,
    "error_log" TEXT NOT NULL DEFAULT '',
    "log_file_url" TEXT NOT NULL DEFAULT '',
    "auto_recovered" BOOLEAN NOT NULL DEFAULT false,
    "recovery_action" "CrashAction",
    "reassigned_to_node_id" UUID,
    "recovered_at" TIMESTAMPTZ(3),

    CONSTRAINT "node_crashes_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "job_node_blocks" (
    "render_job_id" UUID NOT NULL,
    "node_id" UUID NOT NULL,
    "failures" INTEGER NOT NULL DEFAULT 0,
    "blocked_at" TIMESTAMPTZ(3),

    CONSTRAINT "job_node_blocks_pkey" PRIMARY KEY ("render_job_id","node_id")
);

-- CreateTable
CREATE TABLE "node_commands" (
    "id" UUID NOT NULL,
    "node_id" UUID NOT NULL,
    "type" "CommandType" NOT NULL,
    "payload" JSONB NOT NULL DEFAULT '{}',
    "status" "CommandStatus" NOT NULL DEFAULT 'Pending',
    "render_job_id" UUID,
    "frame_job_id" UUID,
    "lease_token" TEXT,
    "delivery_count" INTEGER NOT NULL DEFAULT 0,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "delivered_at" TIMESTAMPTZ(3),
    "acknowledged_at" TIMESTAMPTZ(3),
    "completed_at" TIMESTAMPTZ(3),
    "result" JSONB,

    CONSTRAINT "node_commands_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "snapshots" (
    "id" UUID NOT NULL,
    "user_id" UUID NOT NULL,
    "saved_project_id" UUID NOT NULL,
    "scene_key" TEXT NOT NULL,
    "frame_number" INTEGER NOT NULL,
    "aep_file_md5" TEXT NOT NULL,
    "status" "SnapshotStatus" NOT NULL DEFAULT 'Pending',
    "node_id" UUID,
    "image_key" TEXT,
    "thumbnail_key" TEXT,
    "width" INTEGER,
    "height" INTEGER,
    "duration_ms" INTEGER,
    "failed_message" TEXT,
    "requested_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "completed_at" TIMESTAMPTZ(3),
    "expires_at" TIMESTAMPTZ(3),

    CONSTRAINT "snapshots_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "exports" (
    "id" UUID NOT NULL,
    "user_id" UUID NOT NULL,
    "render_job_id" UUID,
    "saved_project_id" UUID NOT NULL,
    "path" TEXT NOT NULL,
    "image" TEXT NOT NULL DEFAULT '',
    "size_bytes" BIGINT NOT NULL DEFAULT 0,
    "duration_sec" DOUBLE PRECISION NOT NULL,
    "width" INTEGER NOT NULL,
    "height" INTEGER NOT NULL,
    "file_extension" TEXT NOT NULL,
    "file_type" TEXT NOT NULL,
    "render_quality" "Quality" NOT NULL,
    "create_type" TEXT NOT NULL,
    "produce_date" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "auto_delete_date" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "exports_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "export_files" (
    "id" UUID NOT NULL,
    "export_id" UUID NOT NULL,
    "thumbnail" TEXT NOT NULL DEFAULT '',
    "path" TEXT NOT NULL,
    "size_bytes" BIGINT NOT NULL DEFAULT 0,
    "file_type" TEXT NOT NULL,

    CONSTRAINT "export_files_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "node_updates" (
    "id" UUID NOT NULL,
    "update_file_name" TEXT NOT NULL,
    "update_number" INTEGER NOT NULL,
    "description" TEXT NOT NULL DEFAULT '',
    "target_ae_version" TEXT NOT NULL,
    "in_update_queue" BOOLEAN NOT NULL DEFAULT false,
    "download_key" TEXT,
    "sha256" TEXT,
    "create_date" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "node_updates_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "rollouts" (
    "id" UUID NOT NULL,
    "update_id" UUID NOT NULL,
    "status" "RolloutStatus" NOT NULL DEFAULT 'InProgress',
    "current_wave" INTEGER NOT NULL DEFAULT 0,
    "created_by" TEXT,
    "halt_reason" TEXT,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "rollouts_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "rollout_targets" (
    "rollout_id" UUID NOT NULL,
    "node_id" UUID NOT NULL,
    "wave" INTEGER NOT NULL,
    "status" "RolloutTargetStatus" NOT NULL DEFAULT 'Waiting',
    "command_id" UUID,
    "sent_at" TIMESTAMPTZ(3),
    "applied_at" TIMESTAMPTZ(3),

    CONSTRAINT "rollout_targets_pkey" PRIMARY KEY ("rollout_id","node_id")
);

-- CreateTable
CREATE TABLE "wallets" (
    "user_id" UUID NOT NULL,
    "balance_minor" BIGINT NOT NULL DEFAULT 0,
    "currency" TEXT NOT NULL DEFAULT 'USD',
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "wallets_pkey" PRIMARY KEY ("user_id")
);

-- CreateTable
CREATE TABLE "ledger_entries" (
    "id" UUID NOT NULL,
    "user_id" UUID NOT NULL,
    "kind" "LedgerEntryKind" NOT NULL,
    "amount_minor" BIGINT NOT NULL,
    "balance_after_minor" BIGINT NOT NULL,
    "idempotency_key" TEXT NOT NULL,
    "description" TEXT NOT NULL DEFAULT '',
    "render_job_id" UUID,
    "export_id" UUID,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "ledger_entries_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "discount_codes" (
    "code" TEXT NOT NULL,
    "percent_off" INTEGER,
    "amount_off_minor" BIGINT,
    "expires_at" TIMESTAMPTZ(3),
    "max_uses" INTEGER,
    "used_count" INTEGER NOT NULL DEFAULT 0,
    "active" BOOLEAN NOT NULL DEFAULT true,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "discount_codes_pkey" PRIMARY KEY ("code")
);

-- CreateIndex
CREATE INDEX "render_jobs_user_id_queued_at_id_idx" ON "render_jobs"("user_id", "queued_at" DESC, "id");

-- CreateIndex
CREATE INDEX "render_jobs_user_id_step_queued_at_idx" ON "render_jobs"("user_id", "step", "queued_at" DESC);

-- CreateIndex
CREATE INDEX "render_jobs_step_priority_queue_queued_at_idx" ON "render_jobs"("step", "priority_queue", "queued_at");

-- CreateIndex
CREATE INDEX "render_jobs_saved_project_id_idx" ON "render_jobs"("saved_project_id");

-- CreateIndex
CREATE INDEX "frame_jobs_render_job_id_order_value_idx" ON "frame_jobs"("render_job_id", "order_value");

-- CreateIndex
CREATE INDEX "frame_jobs_status_created_at_idx" ON "frame_jobs"("status", "created_at");

-- CreateIndex
CREATE INDEX "frame_jobs_node_id_status_idx" ON "frame_jobs"("node_id", "status");

-- CreateIndex
CREATE INDEX "frames_frame_job_id_idx" ON "frames"("frame_job_id");

-- CreateIndex
CREATE INDEX "job_logs_render_job_id_timestamp_idx" ON "job_logs"("render_job_id", "timestamp");

-- CreateIndex
CREATE INDEX "job_logs_timestamp_idx" ON "job_logs"("timestamp");

-- CreateIndex
CREATE UNIQUE INDEX "render_nodes_name_key" ON "render_nodes"("name");

-- CreateIndex
CREATE INDEX "render_nodes_region_status_idx" ON "render_nodes"("region", "status");

-- CreateIndex
CREATE INDEX "render_nodes_status_last_heartbeat_at_idx" ON "render_nodes"("status", "last_heartbeat_at");

-- CreateIndex
CREATE INDEX "node_template_cache_aep_file_md5_idx" ON "node_template_cache"("aep_file_md5");

-- CreateIndex
CREATE INDEX "node_health_samples_node_id_recorded_at_idx" ON "node_health_samples"("node_id", "recorded_at");

-- CreateIndex
CREATE INDEX "node_health_samples_bucket_seconds_recorded_at_idx" ON "node_health_samples"("bucket_seconds", "recorded_at");

-- CreateIndex
CREATE INDEX "node_crashes_node_id_crashed_at_idx" ON "node_crashes"("node_id", "crashed_at");

-- CreateIndex
CREATE INDEX "node_crashes_render_job_id_idx" ON "node_crashes"("render_job_id");

-- CreateIndex
CREATE INDEX "job_node_blocks_node_id_idx" ON "job_node_blocks"("node_id");

-- CreateIndex
CREATE INDEX "node_commands_node_id_status_created_at_idx" ON "node_commands"("node_id", "status", "created_at");

-- CreateIndex
CREATE INDEX "node_commands_render_job_id_idx" ON "node_commands"("render_job_id");

-- CreateIndex
CREATE INDEX "snapshots_saved_project_id_scene_key_frame_number_aep_file__idx" ON "snapshots"("saved_project_id", "scene_key", "frame_number", "aep_file_md5", "status");

-- CreateIndex
CREATE INDEX "snapshots_user_id_requested_at_idx" ON "snapshots"("user_id", "requested_at" DESC);

-- CreateIndex
CREATE INDEX "snapshots_status_requested_at_idx" ON "snapshots"("status", "requested_at");

-- CreateIndex
CREATE INDEX "snapshots_expires_at_idx" ON "snapshots"("expires_at");

-- CreateIndex
CREATE UNIQUE INDEX "exports_render_job_id_key" ON "exports"("render_job_id");

-- CreateIndex
CREATE INDEX "exports_user_id_produce_date_id_idx" ON "exports"("user_id", "produce_date" DESC, "id");

-- CreateIndex
CREATE INDEX "exports_auto_delete_date_idx" ON "exports"("auto_delete_date");

-- CreateIndex
CREATE UNIQUE INDEX "export_files_export_id_file_type_key" ON "export_files"("export_id", "file_type");

-- CreateIndex
CREATE UNIQUE INDEX "node_updates_update_number_key" ON "node_updates"("update_number");

-- CreateIndex
CREATE INDEX "rollouts_status_idx" ON "rollouts"("status");

-- CreateIndex
CREATE INDEX "rollouts_update_id_idx" ON "rollouts"("update_id");

-- CreateIndex
CREATE INDEX "rollout_targets_node_id_status_idx" ON "rollout_targets"("node_id", "status");

-- CreateIndex
CREATE UNIQUE INDEX "ledger_entries_idempotency_key_key" ON "ledger_entries"("idempotency_key");

-- CreateIndex
CREATE INDEX "ledger_entries_user_id_created_at_idx" ON "ledger_entries"("user_id", "created_at" DESC);

-- CreateIndex
CREATE INDEX "ledger_entries_render_job_id_idx" ON "ledger_entries"("render_job_id");

-- AddForeignKey
ALTER TABLE "render_jobs" ADD CONSTRAINT "render_jobs_retried_from_id_fkey" FOREIGN KEY ("retried_from_id") REFERENCES "render_jobs"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "frame_jobs" ADD CONSTRAINT "frame_jobs_render_job_id_fkey" FOREIGN KEY ("render_job_id") REFERENCES "render_jobs"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "frame_jobs" ADD CONSTRAINT "frame_jobs_node_id_fkey" FOREIGN KEY ("node_id") REFERENCES "render_nodes"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "frames" ADD CONSTRAINT "frames_render_job_id_fkey" FOREIGN KEY ("render_job_id") REFERENCES "render_jobs"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "frames" ADD CONSTRAINT "frames_frame_job_id_fkey" FOREIGN KEY ("frame_job_id") REFERENCES "frame_jobs"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "job_logs" ADD CONSTRAINT "job_logs_render_job_id_fkey" FOREIGN KEY ("render_job_id") REFERENCES "render_jobs"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "node_template_cache" ADD CONSTRAINT "node_template_cache_node_id_fkey" FOREIGN KEY ("node_id") REFERENCES "render_nodes"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "node_health_samples" ADD CONSTRAINT "node_health_samples_node_id_fkey" FOREIGN KEY ("node_id") REFERENCES "render_nodes"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "node_crashes" ADD CONSTRAINT "node_crashes_node_id_fkey" FOREIGN KEY ("node_id") REFERENCES "render_nodes"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "node_crashes" ADD CONSTRAINT "node_crashes_render_job_id_fkey" FOREIGN KEY ("render_job_id") REFERENCES "render_jobs"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "job_node_blocks" ADD CONSTRAINT "job_node_blocks_render_job_id_fkey" FOREIGN KEY ("render_job_id") REFERENCES "render_jobs"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "job_node_blocks" ADD CONSTRAINT "job_node_blocks_node_id_fkey" FOREIGN KEY ("node_id") REFERENCES "render_nodes"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "node_commands" ADD CONSTRAINT "node_commands_node_id_fkey" FOREIGN KEY ("node_id") REFERENCES "render_nodes"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "node_commands" ADD CONSTRAINT "node_commands_render_job_id_fkey" FOREIGN KEY ("render_job_id") REFERENCES "render_jobs"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "exports" ADD CONSTRAINT "exports_render_job_id_fkey" FOREIGN KEY ("render_job_id") REFERENCES "render_jobs"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "export_files" ADD CONSTRAINT "export_files_export_id_fkey" FOREIGN KEY ("export_id") REFERENCES "exports"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "rollouts" ADD CONSTRAINT "rollouts_update_id_fkey" FOREIGN KEY ("update_id") REFERENCES "node_updates"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "rollout_targets" ADD CONSTRAINT "rollout_targets_rollout_id_fkey" FOREIGN KEY ("rollout_id") REFERENCES "rollouts"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "rollout_targets" ADD CONSTRAINT "rollout_targets_node_id_fkey" FOREIGN KEY ("node_id") REFERENCES "render_nodes"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "ledger_entries" ADD CONSTRAINT "ledger_entries_user_id_fkey" FOREIGN KEY ("user_id") REFERENCES "wallets"("user_id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "ledger_entries" ADD CONSTRAINT "ledger_entries_render_job_id_fkey" FOREIGN KEY ("render_job_id") REFERENCES "render_jobs"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "ledger_entries" ADD CONSTRAINT "ledger_entries_export_id_fkey" FOREIGN KEY ("export_id") REFERENCES "exports"("id") ON DELETE SET NULL ON UPDATE CASCADE;

