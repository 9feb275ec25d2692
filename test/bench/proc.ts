// What the benchmarks read about processes (Linux /proc): CPU time and resident memory of a process and
// of the processes it started (the compute process, a job's), which process.cpuUsage() does not see.
import { readdirSync, readFileSync } from 'node:fs'

/** CPU ms `pid` has used so far (utime + stime, clock ticks of 10 ms). */
export function processCpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf-8')
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(f[11]) + Number(f[12])) * 10
}

/** `pid` and every process below it. */
export function processTree(pid: number): number[] {
  const parent = new Map<number, number>()
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf-8')
      parent.set(Number(entry), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]))
    } catch {
      // gone meanwhile
    }
  }
  const tree = [pid]
  for (let i = 0; i < tree.length; i++) for (const [p, pp] of parent) if (pp === tree[i]) tree.push(p)
  return tree
}

/** RSS in bytes of `pid` and each of its descendants, with the start of their command lines. */
export function treeRss(pid: number): { pid: number; rss: number; what: string }[] {
  return processTree(pid).map((p) => {
    const status = readFileSync(`/proc/${p}/status`, 'utf-8')
    const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0)
    const what = readFileSync(`/proc/${p}/cmdline`, 'utf-8').split('\0').filter(Boolean).map((s) => s.split('/').pop()).slice(0, 4).join(' ')
    return { pid: p, rss: kb * 1024, what }
  })
}
