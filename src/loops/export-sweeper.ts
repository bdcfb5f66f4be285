// Removes exports past their auto-delete date. Replicas may all run it: the sweep locks the rows
// it works on and skips those another replica holds.
import type { Logger } from 'pino';
import type { ExportService } from '../domain/exports/export-service.ts';
import { createLoop, type Loop } from './loop.ts';

export const EXPORT_SWEEP_INTERVAL_MS = 60_000;

export function createExportSweeper({ exports, logger }: { exports: ExportService; logger: Logger }): Loop {
  return createLoop({
    name: 'export-sweeper',
    intervalMs: EXPORT_SWEEP_INTERVAL_MS,
    logger,
    run: () => exports.sweepExpired(),
  });
}
