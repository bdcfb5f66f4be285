import { HELD_TEMPLATES } from '../../src/domain/nodes/templates.ts';
import type { RestRoute } from '../route.ts';
import { toRestNode, toRestNodeDetail } from '../serializers.ts';

const templateCount = { _count: { select: { templates: { where: HELD_TEMPLATES } } } } as const;

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
      const node = await nodes.get(actor, params.node_id ?? '', {
        include: {
          ...templateCount,
          templates: { where: HELD_TEMPLATES, select: { aepFileMd5: true }, orderBy: { aepFileMd5: 'asc' } },
        },
      });
      return toRestNodeDetail(node);
    },
  },
];
