// The page main/index.ts shows instead of the workbench when better-sqlite3 cannot load: what is wrong
// and the command that fixes it. A self-contained data: URL with no script at all; its own CSP allows
// nothing but its inline style, and the window that shows it has no preload.
import type { NativeRuntime } from './sqlite'

export const FIX_COMMAND = 'npm run electron:native'
export const PAGE_CSP = "default-src 'none'; style-src 'unsafe-inline'"

export interface SqliteProblem {
  /** better-sqlite3's error, e.g. "... was compiled against a different Node.js version ...". */
  error: string
  runtime: NativeRuntime
  /** Where the build for this runtime's ABI is looked for. */
  expected: string
  /** An installed app: nothing to rebuild, the installation itself is broken. */
  packaged: boolean
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
}

function runtimeName(rt: NativeRuntime): string {
  return `${rt.electron ? `Electron ${rt.electron}` : 'Node.js'} (ABI ${rt.modules}, ${rt.platform}-${rt.arch})`
}

export function sqliteProblemPage(p: SqliteProblem): string {
  const e = escapeHtml
  const fix = p.packaged
    ? `<p>This installation of Feature Tracer lacks the build of better-sqlite3 for its Electron. Reinstall it, and
       if that does not help, report this page.</p>`
    : `<p>better-sqlite3 is a native module, built for one ABI. <code>node_modules</code> holds the build for
       Node.js (serve mode, the command line and the tests use it); the desktop app needs one for its
       Electron, kept apart in <code>${e(p.expected)}</code>, which is not there or does not load.</p>
       <p>To make it, run this in the project folder (it downloads a prebuilt binary, or builds one from
       source with Python 3 and a C++ compiler), then start the app again with <code>npm start</code>:</p>
       <pre class="fix">${e(FIX_COMMAND)}</pre>
       <p>Not <code>npm rebuild</code>, which the error suggests: it would rebuild <code>node_modules</code>' copy for
       Node.js again.</p>`
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${e(PAGE_CSP)}">
<title>Feature Tracer cannot start</title>
<style>
  body { font: 14px/1.5 system-ui, sans-serif; margin: 2rem 2.5rem; color: #1f2328; }
  h1 { font-size: 1.3rem; margin: 0 0 1rem; }
  pre { white-space: pre-wrap; background: #f6f8fa; border: 1px solid #d0d7de; border-radius: 6px; padding: .6rem .8rem; }
  pre.fix { font-size: 1.1rem; font-weight: 600; }
  code { background: #f6f8fa; padding: 0 .25rem; border-radius: 4px; word-break: break-all; }
</style>
</head>
<body>
<h1>Feature Tracer cannot start: its SQLite module does not load</h1>
<p>The activation cache, labels and notes live in SQLite databases, opened through better-sqlite3.
   ${e(runtimeName(p.runtime))} could not load it:</p>
<pre>${e(p.error)}</pre>
${fix}
</body>
</html>
`
}

/** The page as a URL for BrowserWindow.loadURL. */
export function pageUrl(html: string): string {
  return `data:text/html;charset=utf-8,${encodeURIComponent(html)}`
}
