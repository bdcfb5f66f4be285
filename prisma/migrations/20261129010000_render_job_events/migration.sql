-- AlterTable
ALTER TABLE "render_jobs" ADD COLUMN     "event_seq" INTEGER NOT NULL DEFAULT 0;

-- CreateTable
CREATE TABLE "render_job_events" (
    "render_job_id" UUID NOT NULL,
    "seq" INTEGER NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "payload" JSONB NOT NULL,

    CONSTRAINT "render_job_events_pkey" PRIMARY KEY ("render_job_id","seq")
);

-- CreateIndex
CREATE INDEX "render_job_events_created_at_idx" ON "render_job_events"("created_at");

-- AddForeignKey
ALTER TABLE "render_job_events" ADD CONSTRAINT "render_job_events_render_job_id_fkey" FOREIGN KEY ("render_job_id") REFERENCES "render_jobs"("id") ON DELETE CASCADE ON UPDATE CASCADE;

