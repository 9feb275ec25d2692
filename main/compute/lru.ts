// Least-recently-used entries under a budget (a count, or bytes): the engine's forward sessions and its
// kept token blocks. Map order is the recency order; the newest entry is always kept, even alone over budget.
export class Lru<K, V> {
  private readonly entries = new Map<K, { value: V; cost: number }>()
  private used = 0

  constructor(
    private readonly budget: number,
    /** Called for each entry pushed out (e.g. to release a session). */
    private readonly onEvict: (value: V) => void = () => undefined,
  ) {}

  /** The value under `key`, which becomes the most recent. */
  get(key: K): V | undefined {
    const e = this.entries.get(key)
    if (!e) return undefined
    this.entries.delete(key)
    this.entries.set(key, e)
    return e.value
  }

  /** Evicts the least recent entries until `cost` more fits (call before allocating a new entry's value). */
  makeRoom(cost: number): void {
    for (const [key, e] of this.entries) {
      if (this.used + cost <= this.budget) break
      this.entries.delete(key)
      this.used -= e.cost
      this.onEvict(e.value)
    }
  }

  /** Adds `value` as the most recent entry, evicting older ones over the budget. */
  set(key: K, value: V, cost = 1): void {
    this.delete(key)
    this.makeRoom(cost)
    this.entries.set(key, { value, cost })
    this.used += cost
  }

  delete(key: K): void {
    const e = this.entries.get(key)
    if (!e) return
    this.entries.delete(key)
    this.used -= e.cost
    this.onEvict(e.value)
  }

  /** Keys, least recently used first. */
  keys(): K[] {
    return [...this.entries.keys()]
  }

  /** Removes every entry and returns the values, for the caller to dispose of (no onEvict). */
  clear(): V[] {
    const values = [...this.entries.values()].map((e) => e.value)
    this.entries.clear()
    this.used = 0
    return values
  }
}
