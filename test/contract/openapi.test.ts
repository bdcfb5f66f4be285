import { validate } from '@readme/openapi-parser';
import { describe, expect, it } from 'vitest';
import { listOperations, loadContract, type OpenApiDocument, type OpenApiOperation, resolveSchema, type Schema } from '../../rest-compat/contract.ts';
import { heartbeatSchema, registerNodeSchema } from '../../src/domain/nodes/node-service.ts';
import { updateNodeSchema } from '../../src/domain/nodes/node-admin-service.ts';

// The original contract as its owners published it: every operation with its parameters
// (`in name: type[/format]`) and the responses it documented. Written out here because the repo
// may not read the shared original; rest-compat/openapi.yaml must keep all of it.
const ORIGINAL_OPERATIONS: { operation: string; parameters: string[]; responses: string[] }[] = [
  { operation: 'GET /renders', parameters: ['query status: string', 'query page: integer', 'query page_size: integer'], responses: ['200'] },
  { operation: 'POST /renders', parameters: [], responses: ['201', '402'] },
  { operation: 'GET /renders/{job_id}', parameters: ['path job_id: string/uuid'], responses: ['200'] },
  { operation: 'POST /renders/{job_id}/cancel', parameters: ['path job_id: string/uuid'], responses: ['200'] },
  { operation: 'POST /renders/{job_id}/retry', parameters: ['path job_id: string/uuid'], responses: ['201'] },
  { operation: 'GET /renders/{job_id}/progress', parameters: ['path job_id: string/uuid'], responses: ['200'] },
  { operation: 'GET /renders/{job_id}/logs', parameters: ['path job_id: string/uuid', 'query level: string'], responses: ['200'] },
  { operation: 'POST /snapshots', parameters: [], responses: ['202'] },
  { operation: 'GET /snapshots/{snapshot_id}', parameters: ['path snapshot_id: string/uuid'], responses: ['200'] },
  { operation: 'GET /exports', parameters: ['query page: integer'], responses: ['200'] },
  { operation: 'GET /exports/{export_id}', parameters: ['path export_id: string/uuid'], responses: ['200'] },
  { operation: 'DELETE /exports/{export_id}', parameters: ['path export_id: string/uuid'], responses: ['204'] },
  { operation: 'POST /exports/{export_id}/extend', parameters: ['path export_id: string/uuid'], responses: ['200'] },
  { operation: 'GET /exports/{export_id}/download-url', parameters: ['path export_id: string/uuid', 'query format: string'], responses: ['200'] },
  { operation: 'GET /nodes', parameters: ['query region: string', 'query status: string'], responses: ['200'] },
  { operation: 'POST /nodes', parameters: [], responses: ['201'] },
  { operation: 'GET /nodes/{node_id}', parameters: ['path node_id: string/uuid'], responses: ['200'] },
  { operation: 'PATCH /nodes/{node_id}', parameters: ['path node_id: string/uuid'], responses: ['200'] },
  { operation: 'POST /nodes/{node_id}/restart', parameters: ['path node_id: string/uuid'], responses: ['202'] },
  { operation: 'POST /nodes/{node_id}/release', parameters: ['path node_id: string/uuid'], responses: ['204'] },
  { operation: 'POST /nodes/{node_id}/close-ae', parameters: ['path node_id: string/uuid'], responses: ['204'] },
  { operation: 'GET /nodes/{node_id}/health', parameters: ['path node_id: string/uuid'], responses: ['200'] },
  {
    operation: 'GET /nodes/{node_id}/health/history',
    parameters: ['path node_id: string/uuid', 'query from: string/date-time', 'query to: string/date-time'],
    responses: ['200'],
  },
  { operation: 'GET /nodes/{node_id}/crashes', parameters: ['path node_id: string/uuid'], responses: ['200'] },
  { operation: 'GET /node-updates', parameters: [], responses: ['200'] },
  { operation: 'POST /node-updates/{update_id}/rollout', parameters: ['path update_id: string/uuid'], responses: ['202'] },
  { operation: 'POST /internal/nodes/{node_id}/heartbeat', parameters: ['path node_id: string/uuid'], responses: ['200'] },
  { operation: 'POST /internal/nodes/{node_id}/online', parameters: ['path node_id: string/uuid'], responses: ['200'] },
  { operation: 'POST /internal/render/jobs/{job_id}/frames', parameters: ['path job_id: string/uuid'], responses: ['204'] },
  { operation: 'POST /internal/render/jobs/{job_id}/crash', parameters: ['path job_id: string/uuid'], responses: ['200'] },
  { operation: 'POST /internal/render/jobs/{job_id}/replica-ready', parameters: ['path job_id: string/uuid'], responses: ['204'] },
  { operation: 'POST /internal/nodes/{node_id}/cache-update', parameters: ['path node_id: string/uuid'], responses: ['204'] },
];

// Field names of the original component schemas (those of allOf parts included).
const ORIGINAL_SCHEMA_FIELDS: Record<string, string[]> = {
  PaginationMeta: ['page', 'page_size', 'total', 'has_more'],
  RenderJob: [
    'id', 'saved_project_id', 'name', 'step', 'render_progress', 'priority_queue', 'price_type', 'paid_price_minor',
    'quality', 'resolution', 'frame_rate', 'duration_sec', 'has_voiceover', 'image_preview_b64', 'failed_message',
    'export_id', 'queued_at', 'started_at', 'completed_at',
  ],
  RenderJobCreate: [
    'saved_project_id', 'quality', 'resolution', 'frame_rate', 'is_60_fps', 'price_type', 'discount_code',
    'support_flatrender', 'tell_me_when_done', 'preferred_region',
  ],
  RenderJobDetail: ['frame_jobs', 'retry_count', 'repair_attempts', 'export'],
  FrameJob: [
    'id', 'node_id', 'start_frame', 'end_frame', 'order_value', 'status', 'frames_rendered', 'frames_validated',
    'attempt', 'last_error',
  ],
  RenderProgress: [
    'job_id', 'step', 'progress', 'current_frame', 'total_frames', 'eta_seconds', 'preview_b64', 'active_nodes', 'message',
  ],
  Snapshot: [
    'id', 'saved_project_id', 'scene_key', 'frame_number', 'status', 'image_url', 'thumbnail_url', 'width', 'height',
    'duration_ms', 'expires_at', 'requested_at', 'completed_at',
  ],
  Export: [
    'id', 'saved_project_id', 'path', 'image', 'size_bytes', 'duration_sec', 'width', 'height', 'file_extension',
    'file_type', 'render_quality', 'create_type', 'produce_date', 'auto_delete_date',
  ],
  ExportDetail: ['files'],
  RenderNode: [
    'id', 'name', 'region', 'node_ip', 'worker_port', 'status', 'node_kind', 'owner_user_id', 'current_ae_version',
    'node_agent_version', 'ram_gb', 'cpu_cores', 'priority', 'is_active', 'accepts_new_jobs', 'last_heartbeat_at',
    'current_job_id', 'last_cpu_pct', 'last_ram_available_mb', 'ae_running', 'cache_used_gb', 'cached_template_count',
    'lifetime_task_count', 'lifetime_crash_count', 'consecutive_failures',
  ],
  RenderNodeCreate: [
    'name', 'region', 'node_ip', 'worker_port', 'current_ae_version', 'ram_gb', 'cpu_cores', 'node_kind',
    'owner_user_id', 'priority',
  ],
  RenderNodeDetail: ['available_ae_versions', 'cached_template_md5s', 'last_maintenance_at', 'next_maintenance_at'],
  NodeHealth: [
    'node_id', 'recorded_at', 'status', 'cpu_pct', 'ram_available_mb', 'ae_running', 'current_job_id', 'current_frame',
    'cache_used_gb',
  ],
  NodeCrash: [
    'id', 'node_id', 'render_job_id', 'crashed_at', 'last_known_frame', 'crash_signal', 'error_log', 'log_file_url',
    'auto_recovered', 'recovery_action', 'recovered_at',
  ],
  NodeUpdate: [
    'id', 'update_file_name', 'update_number', 'description', 'target_ae_version', 'in_update_queue',
    'rolled_out_to_node_ids', 'create_date',
  ],
};

/** Operations that charge the caller's wallet. */
const PAYING_OPERATIONS = ['POST /renders', 'POST /renders/{job_id}/retry', 'POST /exports/{export_id}/extend'];

/** Reads of users' renders, snapshots and exports, which services may make too: no caller of the callers' door is refused them. */
const READS_OPEN_TO_SERVICES = [
  'GET /renders',
  'GET /renders/{job_id}',
  'GET /renders/{job_id}/progress',
  'GET /renders/{job_id}/logs',
  'GET /snapshots/{snapshot_id}',
  'GET /exports',
  'GET /exports/{export_id}',
  'GET /exports/{export_id}/download-url',
];

const CONFLICTING_OPERATIONS = [
  'POST /renders',
  'POST /renders/{job_id}/cancel',
  'POST /renders/{job_id}/retry',
  'POST /exports/{export_id}/extend',
  'POST /nodes',
  'POST /node-updates/{update_id}/rollout',
  'POST /internal/render/jobs/{job_id}/frames',
  'POST /internal/render/jobs/{job_id}/crash',
  'POST /internal/render/jobs/{job_id}/replica-ready',
];

const ADDED = 'render-orchestrator';
const contract = loadContract();
const original = loadContract(new URL('../fixtures/original-openapi.yaml', import.meta.url));

type Json = Record<string, unknown>;

function operation(key: string): OpenApiOperation {
  const [method, path] = key.split(' ') as [string, string];
  const found = contract.paths[path]?.[method.toLowerCase() as 'get'];
  if (!found) throw new Error(`${key} is not in rest-compat/openapi.yaml`);
  return found;
}

/** Follows a local `$ref` (once is enough for this document's responses and parameters). */
function resolve(document: OpenApiDocument, value: Json): Json {
  const ref = value.$ref;
  if (typeof ref !== 'string') return value;
  let target: unknown = document;
  for (const segment of ref.replace(/^#\//, '').split('/')) target = (target as Json)[segment];
  return target as Json;
}

function schema(name: string): Json {
  const found = (contract.components?.schemas as Record<string, Json> | undefined)?.[name];
  if (!found) throw new Error(`components/schemas/${name} is missing`);
  return found;
}

function fieldsOf(name: string): Record<string, Json> {
  const s = schema(name);
  const parts = Array.isArray(s.allOf) ? (s.allOf as Json[]) : [s];
  return Object.assign({}, ...parts.map((part) => (part.properties as Record<string, Json> | undefined) ?? {}));
}

function describeParameter(parameter: Json): string {
  const s = resolveSchema(contract, parameter.schema);
  return `${String(parameter.in)} ${String(parameter.name)}: ${String(s.type)}${s.format ? `/${String(s.format)}` : ''}`;
}

/** Every field of a resolved schema and of the objects and arrays in it, by path: `frame_jobs[].node_id`. */
function fieldsByPath(schema: Schema, prefix = ''): [string, Schema][] {
  const members = Object.entries(schema.properties ?? {}).map(([name, member]): [string, Schema] => [`${prefix}${name}`, member]);
  return members.flatMap(([path, member]) => [
    [path, member] as [string, Schema],
    ...fieldsByPath(member.type === 'array' ? (member.items ?? {}) : member, `${path}${member.type === 'array' ? '[]' : ''}.`),
  ]);
}

describe('rest-compat/openapi.yaml', () => {
  it('is a valid OpenAPI 3.0.3 document', async () => {
    expect(contract.openapi).toBe('3.0.3');
    // The validator dereferences in place, so it gets its own copy.
    const result = await validate(structuredClone(contract) as Parameters<typeof validate>[0], {
      validate: { errors: { colorize: false } },
    });
    expect(result.valid ? [] : result.errors.map((error) => error.message)).toEqual([]);
    expect(result.warnings).toEqual([]);
  });

  it('keeps the 28 paths and 32 operations of the original', () => {
    expect(ORIGINAL_OPERATIONS).toHaveLength(32);
    expect(new Set(ORIGINAL_OPERATIONS.map((o) => o.operation.split(' ')[1])).size).toBe(28);
    const present = new Set(listOperations(contract).map((o) => `${o.method} ${o.path}`));
    const missing = ORIGINAL_OPERATIONS.map((o) => o.operation).filter((key) => !present.has(key));
    expect(missing).toEqual([]);
  });

  it.each(ORIGINAL_OPERATIONS)('$operation keeps its parameters and responses', ({ operation: key, parameters, responses }) => {
    const op = operation(key);
    const all = (op.parameters ?? []).map((p) => resolve(contract, p));
    // A parameter the copy adds is marked, and optional: callers of the original send none.
    const added = all.filter((p) => p['x-added-by'] === ADDED);
    for (const p of added) expect(p.required ?? false, String(p.name)).toBe(false);
    const actual = all.filter((p) => !added.includes(p));
    expect(actual.map(describeParameter)).toEqual(parameters);
    for (const p of actual.filter((p) => p.in === 'path')) expect(p.required).toBe(true);
    // A parameter the original left optional must stay optional, or old callers break.
    for (const p of actual.filter((p) => p.in !== 'path')) expect(p.required ?? false).toBe(false);
    expect(Object.keys(op.responses)).toEqual(expect.arrayContaining(responses));
  });

  it.each(Object.entries(ORIGINAL_SCHEMA_FIELDS))('schema %s keeps its fields', (name, fields) => {
    expect(Object.keys(fieldsOf(name))).toEqual(expect.arrayContaining(fields));
  });

  it.each(Object.keys(ORIGINAL_SCHEMA_FIELDS))('schema %s keeps the nullability of every field and requires none the original does not', (name) => {
    const ref = { $ref: `#/components/schemas/${name}` };
    const [ours, theirs] = [resolveSchema(contract, ref), resolveSchema(original, ref)];
    const oursByPath = new Map(fieldsByPath(ours));
    for (const [path, field] of fieldsByPath(theirs)) expect(oursByPath.get(path)?.nullable ?? false, path).toBe(field.nullable ?? false);
    expect([...(ours.required ?? [])].sort()).toEqual([...(theirs.required ?? [])].sort());
  });

  it('keeps RenderJobDetail.export a nullable Export', () => {
    const field = fieldsOf('RenderJobDetail').export as Json;
    expect(field.nullable).toBe(true);
    expect(field.allOf).toEqual([{ $ref: '#/components/schemas/Export' }]);
  });
});

describe('what the service adds to the contract', () => {
  it('says so in info.description', () => {
    expect(contract.info.description).toContain(`x-added-by: ${ADDED}`);
  });

  it('defines the Error body', () => {
    const error = schema('Error');
    expect(error['x-added-by']).toBe(ADDED);
    expect(error.required).toEqual(['error']);
    const inner = (error.properties as Record<string, Json>).error as Json;
    expect(inner.required).toEqual(['code', 'message', 'details']);
    const props = inner.properties as Record<string, Json>;
    expect(props.code?.type).toBe('string');
    expect(props.message?.type).toBe('string');
    expect(props.details?.type).toBe('object');
    for (const code of [
      'VALIDATION_FAILED', 'UNAUTHENTICATED', 'FORBIDDEN', 'NOT_FOUND', 'CONFLICT', 'INVALID_STATE', 'STALE_LEASE',
      'PAYMENT_REQUIRED', 'RATE_LIMITED', 'PAYLOAD_TOO_LARGE', 'UNSUPPORTED_MEDIA_TYPE', 'METHOD_NOT_ALLOWED', 'SERVICE_UNAVAILABLE',
    ]) {
      expect(props.code?.description).toContain(code);
    }
  });

  it('says which refusals any operation may answer besides its own', () => {
    for (const refusal of ['405 METHOD_NOT_ALLOWED', '413 PAYLOAD_TOO_LARGE', '415 UNSUPPORTED_MEDIA_TYPE', '429 RATE_LIMITED', '503 SERVICE_UNAVAILABLE']) {
      expect(contract.info.description?.replace(/\s+/g, ' ')).toContain(refusal);
    }
  });

  it.each(ORIGINAL_OPERATIONS.map((o) => o.operation))('%s documents its error responses', (key) => {
    const op = operation(key);
    const [, path] = key.split(' ') as [string, string];
    // Every other original operation is refused to some caller: users' changes to services,
    // admins' operations to users, an agent's to another node.
    const expected = READS_OPEN_TO_SERVICES.includes(key) ? ['400', '401'] : ['400', '401', '403'];
    // Renders and snapshots are of a saved project the studio service synced for the caller.
    if (path.includes('{') || key === 'POST /renders' || key === 'POST /snapshots') expected.push('404');
    if (CONFLICTING_OPERATIONS.includes(key)) expected.push('409');
    if (PAYING_OPERATIONS.includes(key)) expected.push('402');
    const errorStatuses = Object.keys(op.responses).filter((status) => status.startsWith('4'));
    expect(errorStatuses.sort()).toEqual(expected.sort());
    for (const status of errorStatuses) {
      const response = resolve(contract, op.responses[status] as Json);
      expect(response.description, `${key} ${status}`).toEqual(expect.any(String));
      const content = response.content as Record<string, Json>;
      expect(content['application/json']?.schema, `${key} ${status}`).toEqual({ $ref: '#/components/schemas/Error' });
    }
  });

  it('describes the NodeHmac signature', () => {
    const schemes = contract.components?.securitySchemes as Record<string, Json>;
    const hmac = schemes.NodeHmac as Json;
    expect(hmac).toMatchObject({ type: 'apiKey', in: 'header', name: 'X-Node-Signature', 'x-added-by': ADDED });
    for (const fact of ['X-Node-Id', 'X-Node-Timestamp', 'v1=<hex>', '/v1', 'NODE_HMAC_SECRET', '300 s', 'replay']) {
      expect(hmac.description).toContain(fact);
    }
  });

  it('returns agent_key when a node is registered', () => {
    const created = operation('POST /nodes').responses['201'] as Json;
    const body = (created.content as Record<string, Json>)['application/json']?.schema;
    expect(body).toEqual({ $ref: '#/components/schemas/RenderNodeRegistered' });
    const registered = schema('RenderNodeRegistered');
    expect(registered['x-added-by']).toBe(ADDED);
    expect((registered.allOf as Json[])[0]).toEqual({ $ref: '#/components/schemas/RenderNode' });
    expect(fieldsOf('RenderNodeRegistered').agent_key).toMatchObject({ type: 'string' });
  });

  it('accepts the saved-project facts in RenderJobCreate, all optional', () => {
    const create = schema('RenderJobCreate');
    const fields = fieldsOf('RenderJobCreate');
    expect(create.required).toEqual(['saved_project_id', 'quality', 'resolution']);
    expect(fields.name).toMatchObject({ type: 'string', maxLength: 200, 'x-added-by': ADDED });
    expect(fields.duration_sec).toMatchObject({
      type: 'number', minimum: 0, exclusiveMinimum: true, maximum: 3600, 'x-added-by': ADDED,
    });
    expect(fields.has_voiceover).toMatchObject({ type: 'boolean', 'x-added-by': ADDED });
    expect(fields.aep_file_md5).toMatchObject({ type: 'string', 'x-added-by': ADDED });
    expect(new RegExp(String(fields.aep_file_md5?.pattern)).test('d41d8cd98f00b204e9800998ecf8427e')).toBe(true);
    expect(new RegExp(String(fields.aep_file_md5?.pattern)).test('d41d8cd98f00b204e9800998ecf8427')).toBe(false);
    expect(fields.ae_version).toMatchObject({ type: 'string', 'x-added-by': ADDED });
  });

  it('names what an agent may report as its status, and the kinds of node, as the service checks them', () => {
    const heartbeat = resolveSchema(contract, { $ref: '#/components/schemas/NodeHeartbeat' });
    expect(heartbeat.properties?.status?.enum).toEqual(heartbeatSchema.shape.status.unwrap().options);
    const kinds = registerNodeSchema.shape.nodeKind.unwrap().options;
    expect(kinds).toEqual(['Farm', 'Dedicated', 'Private']);
    expect(fieldsOf('RenderNodeCreate').node_kind).toEqual({ $ref: '#/components/schemas/NodeKind' });
    expect(fieldsOf('RenderNode').node_kind).toEqual({ $ref: '#/components/schemas/NodeKind' });
    const patch = (operation('PATCH /nodes/{node_id}').requestBody?.content as Record<string, Json>)['application/json']?.schema as Json;
    expect((patch.properties as Record<string, Json>).node_kind).toEqual({ $ref: '#/components/schemas/NodeKind' });
    expect(updateNodeSchema.safeParse({ nodeKind: 'Cloud' }).success).toBe(false);
    expect(schema('NodeKind').enum).toEqual(kinds);
  });

  it('says which sync of the saved project a render and a snapshot need', () => {
    const render = String(operation('POST /renders').description);
    for (const fact of ['PUT /saved-projects/{saved_project_id}', '`duration_sec` is then required', '400', '402']) expect(render).toContain(fact);
    const snapshot = String(operation('POST /snapshots').description);
    for (const fact of ['PUT /saved-projects/{saved_project_id}', '`aep_file_md5`', '404', '400']) expect(snapshot).toContain(fact);
  });

  it('documents the Idempotency-Key of POST /renders and the 409 of a key used with another body', () => {
    const op = operation('POST /renders');
    const key = (op.parameters ?? []).map((p) => resolve(contract, p)).find((p) => p.name === 'Idempotency-Key');
    expect(key).toMatchObject({ in: 'header', required: false, 'x-added-by': ADDED });
    expect(key?.schema).toMatchObject({ type: 'string', minLength: 1, maxLength: 255 });
    const pattern = new RegExp(String((key?.schema as Json).pattern));
    expect(['7c1e2f0a-retry-safe', '!~'].every((text) => pattern.test(text))).toBe(true);
    expect(['with space', 'tab\t', 'é'].some((text) => pattern.test(text))).toBe(false);
    for (const fact of ['same body', '409 CONFLICT', '24 hours', 'per user', '400 VALIDATION_FAILED']) expect(key?.description).toContain(fact);
    const conflict = resolve(contract, op.responses['409'] as Json);
    expect(conflict).toMatchObject({ 'x-added-by': ADDED, description: expect.stringContaining('Idempotency-Key') });
  });

  it('bounds the GET /renders parameters', () => {
    const byName = Object.fromEntries((operation('GET /renders').parameters ?? []).map((p) => [p.name, p.schema as Json]));
    expect(byName.page).toMatchObject({ type: 'integer', minimum: 1, default: 1 });
    expect(byName.page_size).toMatchObject({ type: 'integer', maximum: 100, default: 20 });
    expect(byName.status?.enum).toEqual(['Queued', 'Preparing', 'Rendering', 'Encoding', 'Completed', 'Failed', 'Cancelled']);
  });

  it('serves the folder object store through signed URLs', () => {
    const op = operation('GET /objects/{key}');
    expect(op['x-added-by']).toBe(ADDED);
    expect(op.security).toEqual([]);
    const parameters = Object.fromEntries((op.parameters ?? []).map((p) => [`${String(p.in)} ${String(p.name)}`, p]));
    expect(Object.keys(parameters).sort()).toEqual(['path key', 'query disposition', 'query disposition_signature', 'query expires', 'query signature']);
    for (const name of ['path key', 'query expires', 'query signature']) expect(parameters[name]?.required, name).toBe(true);
    for (const name of ['query disposition', 'query disposition_signature']) expect(parameters[name]?.required, name).toBe(false);
    expect(Object.keys(op.responses).sort()).toEqual(['200', '403', '404']);
    const ok = op.responses['200'] as Json;
    expect(Object.values(ok.content as Record<string, Json>)[0]?.schema).toEqual({ type: 'string', format: 'binary' });
  });
});

describe('listOperations', () => {
  const operations = listOperations(contract);

  it('lists the original operations, and every other one is marked as added by this service', () => {
    const original = new Set(ORIGINAL_OPERATIONS.map((o) => o.operation));
    const added = operations.filter((o) => !original.has(`${o.method} ${o.path}`));
    expect(operations.length - added.length).toBe(32);
    for (const operation of added) {
      const documented = contract.paths[operation.path]?.[operation.method.toLowerCase() as 'get'] as Json | undefined;
      expect(documented?.['x-added-by'], `${operation.method} ${operation.path}`).toBe('render-orchestrator');
    }
    expect(operations).toContainEqual({ method: 'GET', path: '/objects/{key}', tags: ['Objects'], security: [] });
  });

  it('gives each operation the security that applies to it', () => {
    const securityOf = (key: string) => operations.find((o) => `${o.method} ${o.path}` === key)?.security;
    expect(securityOf('POST /renders')).toEqual([{ BearerAuth: [] }, { ServiceToken: [] }]);
    expect(securityOf('POST /internal/nodes/{node_id}/heartbeat')).toEqual([{ NodeHmac: [] }]);
    for (const o of operations.filter((o) => o.tags.includes('Internal'))) {
      expect(o.security).toEqual([{ NodeHmac: [] }]);
    }
  });

  it('reports methods in upper case and paths without the server prefix', () => {
    expect(operations).toContainEqual({
      method: 'PATCH',
      path: '/nodes/{node_id}',
      tags: ['Nodes'],
      security: [{ BearerAuth: [] }, { ServiceToken: [] }],
    });
    expect(operations.every((o) => o.path.startsWith('/') && !o.path.startsWith('/v1'))).toBe(true);
  });
});
