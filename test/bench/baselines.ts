// What the benchmarks measure besides the app, in the same run: the PyTorch baselines of a cache build
// (tools/bench_torch.py) and the size of a bundle's weights.
import { spawnSync } from 'node:child_process'
import { closeSync, openSync, readSync } from 'node:fs'
import { join } from 'node:path'

export interface TorchBaselines {
  tokens: number
  eager_tokens_per_s: number
  gemm_tokens_per_s: number
  gemm_gflops: number
  threads: number
}

/**
 * PyTorch eager (forward up to the SAE's hook + encode + gate + nonzero) and the encoder's GEMM bound on
 * the bundle's first `tokens` tokens (tools/bench_torch.py), or null with why, printed.
 */
export function torchBaselines(bundleDir: string, tokens: number): TorchBaselines | null {
  const r = spawnSync('/usr/bin/python3', ['tools/bench_torch.py', bundleDir, '--tokens', String(tokens)], { encoding: 'utf8' })
  if (r.status !== 0) {
    console.log(`  baselines not run: ${(r.stderr || r.error?.message || '').trim().split('\n').at(-1)}`)
    return null
  }
  return JSON.parse(r.stdout.trim().split('\n').at(-1) as string) as TorchBaselines
}

/** fp32 bytes of every tensor of model.safetensors and sae.safetensors (read from their headers). */
export function weightBytes(dir: string): number {
  let total = 0
  for (const file of ['model.safetensors', 'sae.safetensors']) {
    const fd = openSync(join(dir, file), 'r')
    try {
      const len = Buffer.alloc(8)
      readSync(fd, len, 0, 8, 0)
      const header = Buffer.alloc(Number(len.readBigUInt64LE()))
      readSync(fd, header, 0, header.length, 8)
      for (const [name, t] of Object.entries(JSON.parse(header.toString('utf-8')) as Record<string, { shape?: number[] }>)) {
        if (name !== '__metadata__' && t.shape) total += 4 * t.shape.reduce((a, b) => a * b, 1)
      }
    } finally {
      closeSync(fd)
    }
  }
  return total
}
