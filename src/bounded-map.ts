// Maps used as caches of a fixed size, for what a process remembers from its callers (verified
// tokens, parsed documents): a caller sending new keys forever must not grow the process forever.

/** Sets `key` as the newest entry of `map`, forgetting the oldest first when `map` holds `most` already. */
export function setKeepingAtMost<K, V>(map: Map<K, V>, most: number, key: K, value: V): void {
  map.delete(key);
  if (map.size >= most) map.delete(map.keys().next().value as K);
  map.set(key, value);
}
