// Reads billing.line_items with icebird, a JavaScript Iceberg reader that
// shares no code with iceberg-go, and prints rows and unblended cost per
// payer, period and usage account as JSON.
//
//   node read.mjs <table folder> <metadata file name>
//
// icebird fetches over HTTP; this shim serves file:// URLs from disk,
// with the Range requests its Parquet reader makes.
import { readFile } from 'node:fs/promises'
import { inflateRawSync } from 'node:zlib'

// Avro container files (Iceberg manifests) arrive deflate-compressed;
// icebird's bundled inflater fails on some of Go's deflate streams, so the
// shim inflates the blocks with Node's zlib and serves codec "null".
function readLong(buf, pos) {
  let n = 0n, shift = 0n, b
  do {
    b = buf[pos++]
    n |= BigInt(b & 0x7f) << shift
    shift += 7n
  } while (b & 0x80)
  return [Number((n >> 1n) ^ -(n & 1n)), pos]
}
function writeLong(v) {
  let n = (BigInt(v) << 1n) ^ (BigInt(v) >> 63n)
  const out = []
  do {
    let b = Number(n & 0x7fn)
    n >>= 7n
    if (n) b |= 0x80
    out.push(b)
  } while (n)
  return Buffer.from(out)
}
function bytesField(b) { return Buffer.concat([writeLong(b.length), b]) }
function inflateAvro(buf) {
  if (buf.subarray(0, 4).toString('latin1') !== 'Obj\x01') return buf
  let pos = 4
  const meta = new Map()
  for (;;) {
    let count
    ;[count, pos] = readLong(buf, pos)
    if (count === 0) break
    if (count < 0) { count = -count; [, pos] = readLong(buf, pos) }
    for (let i = 0; i < count; i++) {
      let len
      ;[len, pos] = readLong(buf, pos)
      const key = buf.subarray(pos, pos + len).toString('utf8'); pos += len
      ;[len, pos] = readLong(buf, pos)
      meta.set(key, buf.subarray(pos, pos + len)); pos += len
    }
  }
  const codec = meta.get('avro.codec')?.toString() ?? 'null'
  if (codec !== 'deflate') return buf
  const sync = buf.subarray(pos, pos + 16); pos += 16
  meta.set('avro.codec', Buffer.from('null'))
  const parts = [buf.subarray(0, 4), writeLong(meta.size)]
  for (const [k, v] of meta) parts.push(bytesField(Buffer.from(k)), bytesField(v))
  parts.push(writeLong(0), sync)
  while (pos < buf.length) {
    let count, size
    ;[count, pos] = readLong(buf, pos)
    ;[size, pos] = readLong(buf, pos)
    const data = inflateRawSync(buf.subarray(pos, pos + size)); pos += size + 16
    parts.push(writeLong(count), bytesField(data), sync)
  }
  return Buffer.concat(parts)
}

const httpFetch = globalThis.fetch
globalThis.fetch = async (input, init = {}) => {
  const url = typeof input === 'string' ? input : input.url
  if (!url.startsWith('file://')) return httpFetch(input, init)
  const path = decodeURIComponent(new URL(url).pathname)
  let data = await readFile(path)
  if (path.endsWith('.avro')) data = inflateAvro(data)
  const size = data.length
  if ((init.method || 'GET').toUpperCase() === 'HEAD') {
    return new Response(null, { status: 200, headers: { 'content-length': String(size) } })
  }
  const range = new Headers(init.headers).get('range')
  if (range) {
    const m = /bytes=(\d+)-(\d*)/.exec(range)
    const start = Number(m[1])
    const end = m[2] ? Math.min(Number(m[2]), size - 1) : size - 1
    return new Response(data.subarray(start, end + 1), { status: 206, headers: { 'content-length': String(end - start + 1) } })
  }
  return new Response(data, { status: 200, headers: { 'content-length': String(size) } })
}

const [tableDir, metadataFileName] = process.argv.slice(2)
const { icebergRead } = await import('icebird')
const rows = await icebergRead({ tableUrl: 'file://' + tableDir, metadataFileName })

// hyparquet hands decimals over as doubles. Costs in AWS files carry at
// most 10 fractional digits, so rounding v × 10^10 recovers each exactly
// (for |v| < 900,000), and BigInt sums them without error.
const SCALE = 10n ** 10n
const totals = {}
for (const r of rows) {
  const key = `${r.bill_payer_account_id}/${r.billing_period}/${r.line_item_usage_account_id}`
  const t = totals[key] ??= { rows: 0, units: 0n }
  t.rows++
  const v = r.line_item_unblended_cost
  if (v !== null && v !== undefined) t.units += BigInt(Math.round(Number(v) * 1e10))
}
const out = {}
for (const [key, t] of Object.entries(totals)) {
  const neg = t.units < 0n
  const abs = neg ? -t.units : t.units
  const frac = (abs % SCALE).toString().padStart(10, '0').replace(/0+$/, '')
  out[key] = { rows: t.rows, unblended_cost: (neg ? '-' : '') + (abs / SCALE).toString() + (frac ? '.' + frac : '') }
}
console.log(JSON.stringify(out))
