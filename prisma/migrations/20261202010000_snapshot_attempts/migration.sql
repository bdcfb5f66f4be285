-- AlterTable
ALTER TABLE "snapshots" ADD COLUMN     "attempts" INTEGER NOT NULL DEFAULT 0;
