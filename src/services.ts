import type { Authenticator } from './adapters/auth/authenticator.ts';
import type { Database } from './adapters/db/database.ts';
import type { Config } from './config.ts';
import type { DiscountCodeService } from './domain/billing/discount-codes.ts';
import type { BillingService } from './domain/billing/ledger.ts';
import type { ExportService } from './domain/exports/export-service.ts';
import type { AgentService } from './domain/agents/agent-service.ts';
import type { JobService } from './domain/jobs/job-service.ts';
import type { NodeAdminService } from './domain/nodes/node-admin-service.ts';
import type { NodeService } from './domain/nodes/node-service.ts';
import type { SavedProjectService } from './domain/projects/saved-project-service.ts';
import type { Scheduler } from './domain/scheduling/scheduler.ts';
import type { SnapshotService } from './domain/snapshots/snapshot-service.ts';
import type { RolloutService } from './domain/updates/rollout-service.ts';
import type { Clock, EventBus, NonceStore, ObjectStore } from './ports.ts';

/** Everything a transport needs: the adapters and the domain services built on them. */
export interface Services {
  config: Config;
  clock: Clock;
  db: Database;
  bus: EventBus;
  store: ObjectStore;
  nonces: NonceStore;
  authenticator: Authenticator;
  nodes: NodeService;
  nodeAdmin: NodeAdminService;
  updates: RolloutService;
  jobs: JobService;
  scheduler: Scheduler;
  agents: AgentService;
  billing: BillingService;
  discountCodes: DiscountCodeService;
  savedProjects: SavedProjectService;
  exports: ExportService;
  snapshots: SnapshotService;
}
