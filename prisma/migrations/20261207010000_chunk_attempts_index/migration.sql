-- CreateIndex
CREATE INDEX "frame_jobs_status_attempt_idx" ON "frame_jobs"("status", "attempt");
