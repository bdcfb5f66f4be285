-- CreateTable
CREATE TABLE "submission_keys" (
    "user_id" UUID NOT NULL,
    "idempotency_key" TEXT NOT NULL,
    "request_hash" TEXT NOT NULL,
    "render_job_id" UUID,
    "answer" JSONB,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "submission_keys_pkey" PRIMARY KEY ("user_id","idempotency_key")
);

-- CreateIndex
CREATE INDEX "submission_keys_created_at_idx" ON "submission_keys"("created_at");

