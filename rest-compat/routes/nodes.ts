import { HELD_TEMPLATES } from '../../src/domain/nodes/templates.ts';
import type { RestRoute } from '../route.ts';
import { toRestNode, toRestNodeDetail } from '../serializers.ts';

/** What a node's answer counts: the templates it holds. */
export const templateCount = { _count: { select: { templates: { where: HELD_TEMPLATES } } } } as const;
/** What a node's detailed answer lists as well: the templates themselves. */
export const nodeDetail = {
  ...templateCount,
  templates: { where: HELD_TEMPLATES, select: { aepFileMd5: true }, orderBy: { aepFileMd5: 'asc' } },
} as const;

export const nodeRoutes: RestRoute[] = [
  {
    method: 'GET',
    url: '/nodes',
    door: 'caller',
    status: 200,
    async handle({ actor, query }, { nodes }) {
      const list = await nodes.list(
        actor,
        { region: query.region as string | undefined, status: query.status as never },
        { include: templateCount },
      );
      return { data: list.map(toRestNode) };
    },
  },
  {
    method: 'POST',
    url: '/nodes',
    door: 'caller',
    status: 201,
    async handle({ actor, body }, { nodes, db }) {
      const { node, agentKey } = await nodes.register(actor, body as never);
      const created = await db.prisma.renderNode.findUniqueOrThrow({ where: { id: node.id }, include: templateCount });
      return { ...toRestNode(created), agent_key: agentKey };
    },
  },
  {
    method: 'GET',
    url: '/nodes/:node_id',
    door: 'caller',
    status: 200,
    async handle({ actor, params }, { nodes }) {
      return toRestNodeDetail(await nodes.get(actor, params.node_id ?? '', { include: nodeDetail }));
    },
  },
];
