/**
 * A Map in least-recently-used order (oldest first), for tables that evict their oldest key: a
 * limitReq zone's buckets, the memory cache's entries. A Map keeps insertion order, so moving a
 * key to the newest end is a delete and an insert; `get` does that only once half the map's
 * worth of keys went in after the key (and never for the newest). A key in use thus stays in the
 * newer half and is never evicted before a key untouched that long, and a busy key costs one
 * lookup, not a delete and an insert per request.
 */
export class RecencyMap<V> {
  private readonly map = new Map<string, { value: V, seq: number }>()
  private inserts = 0

  get size (): number { return this.map.size }

  /** The value of `key`, noted as used. */
  get (key: string): V | undefined {
    const slot = this.map.get(key)
    if (slot === undefined) return undefined
    if (slot.seq !== this.inserts && this.inserts - slot.seq >= this.map.size >> 1) {
      this.map.delete(key)
      this.map.set(key, slot)
      slot.seq = ++this.inserts
    }
    return slot.value
  }

  /** `key` set to `value`, as the newest. */
  set (key: string, value: V): void {
    this.map.delete(key)
    this.map.set(key, { value, seq: ++this.inserts })
  }

  delete (key: string): boolean { return this.map.delete(key) }

  /** The least recently used key, if any. */
  oldest (): string | undefined {
    const first = this.map.keys().next()
    return first.done === true ? undefined : first.value
  }

  /** Keys and values, oldest first (deleting the current one while iterating is allowed). */
  * entries (): Generator<[string, V]> {
    for (const [k, slot] of this.map) yield [k, slot.value]
  }

  clear (): void { this.map.clear() }
}
