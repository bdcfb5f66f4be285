// Rows of several parents read in one statement, handed back to each parent.

/** The rows by the key `keyOf` gives each, every group in the order the rows came. */
export function groupedBy<R>(rows: readonly R[], keyOf: (row: R) => string): Map<string, R[]> {
  const groups = new Map<string, R[]>();
  for (const row of rows) {
    const key = keyOf(row);
    const group = groups.get(key);
    if (group) group.push(row);
    else groups.set(key, [row]);
  }
  return groups;
}
