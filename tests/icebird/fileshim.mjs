// Serves file:// URLs to icebird from disk, with the Range requests its
// Parquet reader makes. Imported for its effect (it wraps fetch).
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
