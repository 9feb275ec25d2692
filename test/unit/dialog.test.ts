// dialog.open / dialog.save (issue 4): a native dialog where the host has one (the Electron shell injects
// it; test/unit/electron-main.test.ts checks that wiring), 'unsupported' as data in serve mode so the page
// falls back to its typed-path field, and payload validation either way.
import { mkdtempSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { openDialogOptions, saveDialogOptions, type FileDialogRequest } from '../../main/app/dialog'
import type { Workbench } from '../../main/app/workbench'
import { startServer, type RunningServer } from '../../main/transports/serve/server'
import { tempDir, tinyWorkbench } from './helpers/cache'

describe('dialog channels in serve mode (no native dialog)', () => {
  let wb: Workbench
  let server: RunningServer

  beforeAll(async () => {
    wb = tinyWorkbench(tempDir())
    const rendererDir = mkdtempSync(join(tempDir(), 'renderer-'))
    writeFileSync(join(rendererDir, 'index.html'), '<!doctype html>')
    server = await startServer({ port: 0, rendererDir, dispatch: wb.dispatch, subscribe: (l) => wb.subscribe(l) })
  })
  afterAll(async () => {
    await server?.close()
    await wb?.close()
  })

  it.each([
    ['dialog.open', { target: 'bundle' }],
    ['dialog.open', { target: 'session', defaultPath: '/tmp/x.ftsession' }],
    ['dialog.save', { target: 'csv', title: 'Export' }],
  ])('answers %s %j with unsupported, over HTTP too', async (channel, payload) => {
    const expected = { ok: false, error: { code: 'unsupported', message: expect.stringContaining('type the path') } }
    expect(await wb.dispatch(channel, payload)).toEqual(expected)
    const res = await fetch(`${server.url}api/${channel}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${server.token}` },
      body: JSON.stringify(payload),
    })
    expect(await res.json()).toEqual(expected)
  })

  it.each([
    ['dialog.open', {}, 'target'],
    ['dialog.open', { target: 'folder' }, 'target'],
    ['dialog.save', { target: 'bundle' }, 'target'],
    ['dialog.open', { target: 'csv', extra: 1 }, 'extra'],
    ['dialog.open', { target: 'csv', title: 'x'.repeat(201) }, 'title'],
    ['dialog.save', { target: 'csv', defaultPath: 42 }, 'defaultPath'],
  ])('refuses %s %j as invalid_request before asking any dialog', async (channel, payload, field) => {
    expect(await wb.dispatch(channel, payload)).toEqual({ ok: false, error: { code: 'invalid_request', message: expect.stringContaining(field) } })
  })
})

describe('dialog channels with a native dialog (as the Electron shell injects it)', () => {
  const asked: FileDialogRequest[] = []
  let answer: string | null = '/data/bundles/demo'
  let wb: Workbench

  beforeAll(() => {
    wb = tinyWorkbench(tempDir(), {
      dialog: {
        async pick(req) {
          asked.push(req)
          return answer
        },
      },
    })
  })
  afterAll(async () => wb?.close())

  it('asks the dialog with a default title, and returns the path it picked or null', async () => {
    expect(await wb.dispatch('dialog.open', { target: 'bundle' })).toEqual({ ok: true, value: { path: '/data/bundles/demo' } })
    expect(asked.at(-1)).toEqual({ mode: 'open', target: 'bundle', title: 'Open a bundle folder' })
    answer = null
    expect(await wb.dispatch('dialog.save', { target: 'csv', title: 'Export top activations', defaultPath: '/tmp/top.csv' })).toEqual({ ok: true, value: { path: null } })
    expect(asked.at(-1)).toEqual({ mode: 'save', target: 'csv', title: 'Export top activations', defaultPath: '/tmp/top.csv' })
  })

  it('maps a request onto Electron dialog options: a folder for bundles, filtered files otherwise', () => {
    expect(openDialogOptions({ mode: 'open', target: 'bundle', title: 't' })).toEqual({ title: 't', filters: [], properties: ['openDirectory'] })
    expect(openDialogOptions({ mode: 'open', target: 'session', title: 't', defaultPath: '/a' })).toEqual({
      title: 't',
      defaultPath: '/a',
      filters: [{ name: 'Feature Tracer session', extensions: ['ftsession'] }],
      properties: ['openFile'],
    })
    expect(saveDialogOptions({ mode: 'save', target: 'csv', title: 't' })).toMatchObject({ filters: [{ extensions: ['csv'] }], properties: expect.arrayContaining(['showOverwriteConfirmation']) })
  })
})
