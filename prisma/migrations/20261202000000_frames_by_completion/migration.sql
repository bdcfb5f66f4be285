-- CreateIndex
CREATE INDEX "frames_render_job_id_completed_at_idx" ON "frames"("render_job_id", "completed_at");
