// What a request asks of the value a field returns, for resolvers that read only that: a field
// of a list of chunks must not read columns nobody asked for from thousands of rows.
import { type FieldNode, type GraphQLResolveInfo, Kind, type SelectionSetNode } from 'graphql';

const namesByFieldNodes = new WeakMap<readonly FieldNode[], ReadonlySet<string>>();

/**
 * The names of the fields the request selects of this field's value, through fragments (whatever
 * their type condition) and whatever directives would skip: too many rather than too few.
 * graphql-js hands every row of a list the same field nodes, so this is worked out once per list.
 */
export function selectedFieldNames(info: GraphQLResolveInfo): ReadonlySet<string> {
  let names = namesByFieldNodes.get(info.fieldNodes);
  if (names) return names;
  const found = new Set<string>();
  const fragmentsSeen = new Set<string>();
  const collect = (selectionSet: SelectionSetNode | undefined) => {
    for (const selection of selectionSet?.selections ?? []) {
      if (selection.kind === Kind.FIELD) found.add(selection.name.value);
      else if (selection.kind === Kind.INLINE_FRAGMENT) collect(selection.selectionSet);
      else if (!fragmentsSeen.has(selection.name.value)) {
        fragmentsSeen.add(selection.name.value);
        collect(info.fragments[selection.name.value]?.selectionSet);
      }
    }
  };
  for (const field of info.fieldNodes) collect(field.selectionSet);
  names = found;
  namesByFieldNodes.set(info.fieldNodes, names);
  return names;
}
