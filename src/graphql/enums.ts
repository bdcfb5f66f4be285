import {
  CommandStatus,
  CommandType,
  CrashAction,
  FrameJobStatus,
  JobStep,
  LedgerEntryKind,
  LogLevel,
  NodeKind,
  NodeStatus,
  PriceType,
  PriorityQueue,
  Quality,
  Resolution,
} from '../generated/prisma/enums.ts';
import { builder } from './builder.ts';

// The database enums are the API's enums: one list of values for REST, GraphQL and storage.
export const JobStepEnum = builder.enumType(JobStep, { name: 'JobStep' });
export const QualityEnum = builder.enumType(Quality, { name: 'Quality' });
export const ResolutionEnum = builder.enumType(Resolution, { name: 'Resolution' });
export const PriceTypeEnum = builder.enumType(PriceType, { name: 'PriceType' });
export const PriorityQueueEnum = builder.enumType(PriorityQueue, { name: 'PriorityQueue' });
export const FrameJobStatusEnum = builder.enumType(FrameJobStatus, { name: 'FrameJobStatus' });
export const NodeStatusEnum = builder.enumType(NodeStatus, { name: 'NodeStatus' });
export const NodeKindEnum = builder.enumType(NodeKind, { name: 'NodeKind' });
export const CrashActionEnum = builder.enumType(CrashAction, { name: 'CrashAction' });
// Named for the node: in the supergraph, a bare CommandType could be any subgraph's.
export const NodeCommandTypeEnum = builder.enumType(CommandType, { name: 'NodeCommandType' });
export const NodeCommandStatusEnum = builder.enumType(CommandStatus, { name: 'NodeCommandStatus' });
export const LedgerEntryKindEnum = builder.enumType(LedgerEntryKind, { name: 'LedgerEntryKind' });
export const LogLevelEnum = builder.enumType(LogLevel, { name: 'LogLevel' });
