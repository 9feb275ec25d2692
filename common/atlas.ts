// Cutting the atlas's clustering tree at a threshold: the page's slider and the CLI's --threshold both do
// it, so it lives in the leaf. Average linkage never merges below an earlier merge (its heights only rise),
// so the clusters at threshold t are the tree's maximal nodes whose height is at most t.

/** One merge of the tree, as scipy's linkage: [a, b, height, size]; node n + k is merge k. */
export type LinkageRow = [number, number, number, number]

export interface AtlasCluster {
  /** The tree node that is this cluster (a point's index for a single point). */
  node: number
  members: number[]
}

/** The clusters of n points at distance threshold `t`, largest first (then by their first member). */
export function cutTree(n: number, linkage: readonly LinkageRow[], t: number): AtlasCluster[] {
  const members: number[][] = Array.from({ length: n }, (_, i) => [i])
  const top = Array.from({ length: n }, (_, i) => i)
  linkage.forEach(([a, b, height], k) => {
    const merged = [...members[a], ...members[b]]
    members.push(merged)
    if (height <= t) for (const i of merged) top[i] = n + k
  })
  const seen = new Set<number>()
  const clusters: AtlasCluster[] = []
  for (let i = 0; i < n; i++) {
    if (seen.has(top[i])) continue
    seen.add(top[i])
    clusters.push({ node: top[i], members: [...members[top[i]]].sort((x, y) => x - y) })
  }
  return clusters.sort((x, y) => y.members.length - x.members.length || x.members[0] - y.members[0])
}
