-- AlterTable
ALTER TABLE "render_nodes" ADD COLUMN     "last_ae_memory_mb" INTEGER;

-- AlterTable
ALTER TABLE "node_health_samples" ADD COLUMN     "ae_memory_mb" INTEGER;
