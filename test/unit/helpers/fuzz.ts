// A small, seeded payload fuzzer for the IPC contract (issue 10): a PRNG whose every draw is reproducible
// from (seed, index), hostile values (type swaps, extreme numbers, huge and odd strings, deep nesting,
// prototype keys), structural mutations of valid example payloads, and raw bodies that are not JSON at all.
// No I/O: the caller decides what a field means (paths, ids) through `FieldValues`.

/** mulberry32: 32-bit state, good enough to spread test cases, and identical on every platform. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

export class Rng {
  constructor(readonly next: () => number) {}

  /** The generator of case `index` of a run with `seed`: each case can be replayed on its own. */
  static of(seed: number, index: number): Rng {
    return new Rng(mulberry32((Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(index + 1, 0x85ebca6b)) >>> 0))
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n)
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]
  }

  chance(p: number): boolean {
    return this.next() < p
  }
}

/** Values no schema should take where a small count, id or index is expected. */
export const EXTREME_NUMBERS: readonly number[] = [
  -1, 0, -0, 0.5, 1.5, -0.5, 1e-300, 1e308, -1e308, Number.MAX_VALUE, Number.EPSILON, 2 ** 31 - 1, 2 ** 31, 2 ** 32,
  2 ** 53, 2 ** 53 + 2, -(2 ** 53), Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER, 2 ** 63, 2 ** 64, 1e21, 123456789012345680000,
]

/** Around the limits of the schemas and of the tiny bundle (d_sae 64, d_vocab 300, n_seq 24, seq_len 32). */
export const BOUNDARY_NUMBERS: readonly number[] = [
  0, 1, 2, 3, 23, 24, 25, 31, 32, 33, 63, 64, 65, 99, 100, 101, 127, 128, 129, 299, 300, 301, 999, 1000, 1001, 4096, 9999, 10_000, 10_001,
  99_999, 100_000, 100_001,
]

const ODD_TEXT: readonly string[] = [
  '',
  ' ',
  '\u0000',
  'a\u0000b',
  '\ud800',
  '\udfff',
  'a\ud800b',
  '😀',
  '\u202eevil\u202c',
  'ünïcödé ñ',
  '\uffff\ufffe',
  '\ufeff{}',
  '\r\n',
  '\t',
  '%ZZ',
  '%00',
  '%E0',
  '%',
  '%2e%2e%2f%2e%2e%2f',
  'null',
  'undefined',
  'NaN',
  'Infinity',
  'true',
  '0',
  '-1',
  '3',
  '1e999',
  '__proto__',
  'constructor',
  'prototype',
  'toString',
  'hasOwnProperty',
  '<script>alert(1)</script>',
  "'; DROP TABLE feature; --",
  '${7*7}',
  '{{7*7}}',
  '\\',
  '"',
  '\'',
  'x/../../y',
  '../../../../etc/passwd',
  'C:\\Windows\\win.ini',
  '\\\\?\\C:\\x',
  'file:///etc/passwd',
]

const STRING_SIZES: readonly number[] = [1, 2, 100, 200, 201, 1000, 1001, 4096, 4097, 10_000, 65_536, 100_000, 100_001]

/** A string made to hurt: empty, control characters, lone surrogates, escapes, or up to ~100 kB. */
export function weirdString(rng: Rng): string {
  switch (rng.int(6)) {
    case 0:
      return rng.pick(ODD_TEXT)
    case 1:
      return rng.pick(['x', 'é', '😀', '\u0000', 'ab']).repeat(Math.ceil(rng.pick(STRING_SIZES) / 2))
    case 2: {
      // Random code units of any plane, surrogate halves included.
      const n = 1 + rng.int(64)
      let s = ''
      for (let i = 0; i < n; i++) s += String.fromCharCode(rng.int(0x10000))
      return s
    }
    case 3: {
      const n = 1 + rng.int(40)
      const pool = 'abcXYZ019 ._-/\\:%$@!?*\u0000\n\t"\''
      let s = ''
      for (let i = 0; i < n; i++) s += pool[rng.int(pool.length)]
      return s
    }
    case 4:
      return String(rng.pick([...EXTREME_NUMBERS, ...BOUNDARY_NUMBERS]))
    default:
      return rng.pick(ODD_TEXT) + 'x'.repeat(rng.int(300)) + rng.pick(ODD_TEXT)
  }
}

/** Arrays or objects nested `depth` levels deep. */
export function deepNest(depth: number, kind: 'array' | 'object'): unknown {
  let v: unknown = kind === 'array' ? [] : {}
  for (let i = 0; i < depth; i++) v = kind === 'array' ? [v] : { a: v }
  return v
}

/** Objects whose own keys are the names of prototype pollution (own properties, as JSON.parse makes them). */
export const PROTO_OBJECTS: readonly string[] = [
  '{"__proto__":{"polluted":"yes","isAdmin":true}}',
  '{"constructor":{"prototype":{"polluted":"yes"}}}',
  '{"prototype":{"polluted":"yes"}}',
  '{"__proto__":null}',
  '{"__proto__":[]}',
  '{"toString":"x","valueOf":1,"hasOwnProperty":null}',
]

export function weirdValue(rng: Rng, level = 0): unknown {
  switch (rng.int(level > 1 ? 6 : 11)) {
    case 0:
      return null
    case 1:
      return rng.chance(0.5)
    case 2:
      return rng.pick(EXTREME_NUMBERS)
    case 3:
      return rng.pick(BOUNDARY_NUMBERS)
    case 4:
    case 5:
      return weirdString(rng)
    case 6:
      return Array.from({ length: rng.pick([0, 1, 2, 5, 65]) }, () => weirdValue(rng, level + 1))
    case 7: {
      const o: Record<string, unknown> = {}
      for (let i = rng.int(4); i > 0; i--) o[rng.chance(0.5) ? weirdKey(rng) : weirdString(rng).slice(0, 200)] = weirdValue(rng, level + 1)
      return o
    }
    case 8:
      return deepNest(rng.pick([10, 100, 1000, 1000]), rng.chance(0.5) ? 'array' : 'object')
    case 9:
      return JSON.parse(rng.pick(PROTO_OBJECTS)) as unknown
    default:
      return Array.from({ length: rng.pick([100, 10_000]) }, (_, i) => (rng.chance(0.5) ? i : rng.pick(EXTREME_NUMBERS)))
  }
}

const KEYS: readonly string[] = ['__proto__', 'constructor', 'prototype', 'toString', '', ' ', 'id', 'path', 'extra', 'x'.repeat(1000), '\u0000', '😀', 'ok', 'error', 'value']

export function weirdKey(rng: Rng): string {
  return rng.pick(KEYS)
}

/** A value fitted to a field's name (hostile paths for `path`, limits for `id`…), or undefined for none. */
export type FieldValues = (key: string, rng: Rng) => unknown

type Json = unknown
type Slot = { parent: Record<string, Json> | Json[] | null; key: string | number; value: Json }

/** Every node of a JSON tree with its parent slot (the root has parent null); deep subtrees are not entered. */
function slots(root: Json): Slot[] {
  const out: Slot[] = [{ parent: null, key: '', value: root }]
  const walk = (v: Json, depth: number) => {
    if (depth > 6 || v === null || typeof v !== 'object') return
    if (Array.isArray(v)) {
      if (v.length > 100) return
      v.forEach((item, i) => {
        out.push({ parent: v, key: i, value: item })
        walk(item, depth + 1)
      })
    } else {
      for (const [k, item] of Object.entries(v as Record<string, Json>)) {
        out.push({ parent: v as Record<string, Json>, key: k, value: item })
        walk(item, depth + 1)
      }
    }
  }
  walk(root, 0)
  return out
}

function setOwn(o: Record<string, Json>, key: string, value: Json): void {
  // defineProperty: `o.__proto__ = v` would set the prototype instead of an own key.
  Object.defineProperty(o, key, { value, enumerable: true, writable: true, configurable: true })
}

/** The same value in another JSON type. */
function retype(v: Json, rng: Rng): Json {
  if (typeof v === 'string') return rng.pick([Number(v), v.length, [v], { value: v }, null, v === '' ? 0 : true])
  if (typeof v === 'number') return rng.pick([String(v), [v], { value: v }, v !== 0, null, `${v}`.padStart(400, '0')])
  if (typeof v === 'boolean') return rng.pick([String(v), Number(v), [v], null])
  if (v === null) return rng.pick([0, '', 'null', [], {}, false])
  if (Array.isArray(v)) return rng.pick([{ ...v }, v.length, JSON.stringify(v), v[0] ?? null, [v]])
  return rng.pick([Object.values(v as object), Object.keys(v as object), JSON.stringify(v), [v], null, 1])
}

/** 1–3 structural mutations of a copy of `example`: replace, drop, add, retype, wrap, or a field-fitted value. */
export function mutate(example: Json, rng: Rng, fieldValue: FieldValues): Json {
  let root = structuredClone(example)
  const rounds = 1 + rng.int(3)
  for (let r = 0; r < rounds; r++) {
    const all = slots(root)
    const slot = rng.pick(all)
    const op = rng.int(10)
    let next: Json
    if (op === 0) next = weirdValue(rng)
    else if (op === 1) next = retype(slot.value, rng)
    else if (op === 2) {
      // Drop: a key of an object, an item of an array; the root is replaced by nothing-like values.
      if (slot.parent === null) next = rng.pick([{}, [], null, ''])
      else {
        if (Array.isArray(slot.parent)) slot.parent.splice(slot.key as number, 1)
        else delete slot.parent[slot.key as string]
        continue
      }
    } else if (op === 3) {
      // Add a key (or an item) next to the real ones.
      const target = all.find((s) => s.value !== null && typeof s.value === 'object' && rng.chance(0.5)) ?? all[0]
      const t = target.value
      if (Array.isArray(t)) t.push(weirdValue(rng))
      else if (t !== null && typeof t === 'object') setOwn(t as Record<string, Json>, rng.chance(0.5) ? weirdKey(rng) : weirdString(rng).slice(0, 100), weirdValue(rng))
      else root = { value: root, [weirdKey(rng)]: weirdValue(rng) }
      continue
    } else if (op === 4) next = rng.chance(0.5) ? [slot.value] : { value: slot.value }
    else {
      // The most common: a value fitted to the field's name (paths, ids, limits), else any hostile value.
      const fitted = typeof slot.key === 'string' && slot.key !== '' ? fieldValue(slot.key, rng) : undefined
      next = fitted !== undefined ? fitted : weirdValue(rng)
    }
    if (slot.parent === null) root = next
    else if (Array.isArray(slot.parent)) slot.parent[slot.key as number] = next
    else setOwn(slot.parent, slot.key as string, next)
  }
  return root
}

/** A body that is not what a channel expects at the byte level: not JSON, empty, or JSON of the wrong top-level type. */
export function rawBody(rng: Rng, example: Json): { body: Buffer; contentType: string | null } {
  const json = JSON.stringify(example)
  const texts = [
    '',
    'not json',
    '{',
    '}',
    '{"a":',
    '[1,2',
    "{'a':1}",
    'undefined',
    'NaN',
    'Infinity',
    '-',
    '\u0000',
    '%ZZ',
    '{"id":NaN}',
    '{"id":1e999}',
    '{"id":-1e999,"topK":1e999}',
    `${json}garbage`,
    `${json}${json}`,
    json.slice(0, Math.max(1, json.length - 1)),
    `\ufeff${json}`,
    '1',
    '-0',
    '"a string"',
    '[]',
    '[{}]',
    `[${json}]`,
    'null',
    'true',
    'false',
    '{}',
    `${' '.repeat(100_000)}{}`,
    `${'['.repeat(10_000)}${']'.repeat(10_000)}`,
    `${'{"a":'.repeat(5000)}1${'}'.repeat(5000)}`,
    JSON.stringify(JSON.stringify(example)),
    json.replace(/\d+/, '1e999'),
    json.replace(/:/, '::'),
  ]
  const c = rng.int(20)
  let body: Buffer
  if (c === 0) body = Buffer.from(Array.from({ length: 1 + rng.int(2000) }, () => rng.int(256)))
  else if (c === 1) body = Buffer.from([0xff, 0xfe, 0x7b, 0x7d, 0xc0, 0xaf, 0xed, 0xa0, 0x80])
  else body = Buffer.from(rng.pick(texts), 'utf-8')
  const contentType = rng.chance(0.9) ? 'application/json' : rng.pick([null, 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data', 'application/json; charset=utf-8'])
  return { body, contentType }
}
