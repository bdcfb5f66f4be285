-- CreateEnum
CREATE TYPE "RolloutSkipReason" AS ENUM ('Offline', 'NoReport');

-- AlterEnum
ALTER TYPE "RolloutTargetStatus" ADD VALUE 'Skipped';

-- AlterTable
ALTER TABLE "rollout_targets" ADD COLUMN     "skip_reason" "RolloutSkipReason";
