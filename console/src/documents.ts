// Every GraphQL operation the console sends, in one place: what it asks of the API is read here,
// and test/web/console-documents.test.ts validates each against the service's schema, including
// the admin actions no browser test clicks.

const NODE_FIELDS = `
  id name region status currentAeVersion nodeAgentVersion lastHeartbeatAt lastCpuPct isActive
  currentJobId currentFrame currentFrameJob { id startFrame endFrame framesRendered }
`;

export const FLEET = `query ConsoleFleet { renderNodes { ${NODE_FIELDS} } }`;
export const FLEET_CHANGED = `subscription ConsoleNodeStatus { nodeStatusChanged { ${NODE_FIELDS} } }`;

export const NODE = `query ConsoleNode($id: UUID!, $from: DateTime!, $to: DateTime!) {
  renderNode(id: $id) {
    id name region status nodeKind nodeIp workerPort currentAeVersion availableAeVersions nodeAgentVersion
    ramGb cpuCores priority isActive acceptsNewJobs lastHeartbeatAt currentJobId currentFrame lastCpuPct
    lastRamAvailableMb aeRunning lastAeMemoryMb cacheUsedGb cachedTemplateCount lifetimeTaskCount lifetimeCrashCount
    consecutiveFailures lastMaintenanceAt maintenanceReason
    currentFrameJob { id startFrame endFrame }
  }
  renderNodeHealthHistory(nodeId: $id, from: $from, to: $to) {
    recordedAt bucketSeconds status cpuPct ramAvailableMb aeRunning aeMemoryMb cacheUsedGb
  }
  renderNodeCrashes(nodeId: $id) { id crashedAt crashSignal renderJobId lastKnownFrame recoveryAction autoRecovered }
  renderNodeCommands(nodeId: $id, first: 25) {
    id type status renderJobId deliveryCount createdAt deliveredAt acknowledgedAt completedAt
  }
}`;
export const NODE_CHANGED = 'subscription ConsoleNodeChanged { nodeStatusChanged { id } }';

// The admin actions on a node, each answering its result union as `result`.
const REFUSED = '__typename ... on DomainError { code message }';
const NODE_NOW = '... on RenderNode { id status }';
const ACTION_DONE = '... on RenderNodeAction { commandId recutChunks node { id status } }';
export const START_MAINTENANCE = `mutation ConsoleStartMaintenance($id: UUID!, $reason: String) {
  result: startRenderNodeMaintenance(id: $id, reason: $reason) { ${REFUSED} ${NODE_NOW} }
}`;
export const END_MAINTENANCE = `mutation ConsoleEndMaintenance($id: UUID!) { result: endRenderNodeMaintenance(id: $id) { ${REFUSED} ${NODE_NOW} } }`;
export const RESTART_NODE = `mutation ConsoleRestartNode($id: UUID!) { result: restartRenderNode(id: $id) { ${REFUSED} ${ACTION_DONE} } }`;
export const RELEASE_NODE = `mutation ConsoleReleaseNode($id: UUID!) { result: releaseRenderNode(id: $id) { ${REFUSED} ${ACTION_DONE} } }`;
export const CLOSE_AE = `mutation ConsoleCloseAe($id: UUID!) { result: closeRenderNodeAe(id: $id) { ${REFUSED} ${ACTION_DONE} } }`;
export const DEACTIVATE_NODE = `mutation ConsoleDeactivateNode($id: UUID!) {
  result: updateRenderNode(id: $id, input: { isActive: false }) { ${REFUSED} ${NODE_NOW} }
}`;
export const ACTIVATE_NODE = `mutation ConsoleActivateNode($id: UUID!) {
  result: updateRenderNode(id: $id, input: { isActive: true }) { ${REFUSED} ${NODE_NOW} }
}`;

const JOB_FIELDS = 'id name userId step renderProgress priorityQueue priceType totalFrames queuedAt startedAt completedAt';

export const JOBS = `query ConsoleJobs($status: JobStep, $first: Int!) {
  renderJobs(status: $status, first: $first) { edges { node { ${JOB_FIELDS} } } }
}`;
export const JOBS_CHANGED = `subscription ConsoleJobUpdated { renderJobUpdated { ${JOB_FIELDS} } }`;

export const JOB = `query ConsoleJob($id: UUID!) {
  renderJob(id: $id) {
    id name userId step renderProgress priorityQueue priceType quality resolution frameRate totalFrames
    retryCount repairAttempts failedMessage preferredRegion queuedAt startedAt completedAt
    frameJobs { id startFrame endFrame orderValue status framesRendered attempt lastError node { id name } }
    nodeBlocks { nodeId failures blockedAt node { id name } }
  }
  renderJobLogs(jobId: $id) { timestamp level nodeId message }
}`;
export const PROGRESS = `subscription ConsoleProgress($jobId: UUID!, $afterSeq: Int) {
  renderProgress(jobId: $jobId, afterSeq: $afterSeq) { seq step progress currentFrame totalFrames etaSeconds activeNodes message }
}`;

export const ROLLOUTS = `query ConsoleRollouts {
  rollouts {
    id status currentWave haltReason waveDeadlineAt createdAt createdBy
    update { id updateNumber updateFileName targetAeVersion description }
    targets { nodeId wave status skipReason sentAt appliedAt node { id name status nodeAgentVersion currentAeVersion } }
  }
  renderNodes { id nodeAgentVersion currentAeVersion }
}`;

// Any admin-only field: it answers FORBIDDEN for a valid token of a user who is not an admin.
export const SIGN_IN_CHECK = 'query ConsoleSignIn { renderNodes(status: Maintenance) { id } }';
