#!/usr/bin/env node
// CI guard: runs Electronegativity (Doyensec's Electron security linter) over the sources and the built
// app, and fails on any finding that tools/security/electronegativity-allowed.json does not explain.
// Each allowed finding's reason is also in docs/SECURITY.md. Offline: the tool's release lookup fails and
// it goes on with the Electron version we pass (-e).
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..')
const allowed = JSON.parse(readFileSync(join(ROOT, 'tools/security/electronegativity-allowed.json'), 'utf-8')).allowed
const electron = JSON.parse(readFileSync(join(ROOT, 'node_modules/electron/package.json'), 'utf-8')).version
const tmp = mkdtempSync(join(tmpdir(), 'ft-eneg-'))
const out = join(tmp, 'findings.sarif')
try {
  const r = spawnSync(
    process.execPath,
    [join(ROOT, 'node_modules/@doyensec/electronegativity/dist/index.js'), '-i', ROOT, '-r', '-e', electron, '-o', out, '-v', 'false'],
    { cwd: ROOT, encoding: 'utf-8', timeout: 300_000 },
  )
  if (r.status !== 0) {
    process.stderr.write(`electronegativity failed (exit ${r.status}):\n${r.stdout}\n${r.stderr}\n`)
    process.exit(1)
  }
  const results = JSON.parse(readFileSync(out, 'utf-8')).runs[0].results
  const findings = results.map((f) => ({
    rule: f.ruleId,
    file: f.locations[0].physicalLocation.artifactLocation.uri.replace(/\\/g, '/'),
    line: f.locations[0].physicalLocation.region.startLine,
    text: f.message.text,
  }))
  const isAllowed = (f) => allowed.some((a) => a.rule === f.rule && a.files.includes(f.file))
  const unexplained = findings.filter((f) => !isAllowed(f))
  for (const f of findings) process.stdout.write(`${isAllowed(f) ? 'explained' : 'NEW      '} ${f.rule} ${f.file}:${f.line} ${f.text}\n`)
  const unused = allowed.filter((a) => !findings.some((f) => f.rule === a.rule && a.files.includes(f.file)))
  for (const a of unused) process.stdout.write(`note: ${a.rule} is allowed but no longer found; remove it from the allow-list\n`)
  process.stdout.write(`electronegativity ${electron}: ${findings.length} findings, ${unexplained.length} unexplained\n`)
  if (unexplained.length) {
    process.stderr.write('Fix each NEW finding, or explain it in tools/security/electronegativity-allowed.json and docs/SECURITY.md.\n')
    process.exit(1)
  }
} finally {
  rmSync(tmp, { recursive: true, force: true })
}
