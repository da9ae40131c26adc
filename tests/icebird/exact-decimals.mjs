// A module loader hook: hyparquet hands Parquet decimals over as doubles,
// which cannot hold scale-18 amounts exactly. This rewrites its decimal
// conversion, as the module loads, to give the exact decimal as a string
// (from the unscaled two's-complement integer, with BigInt); nothing else
// of the reader changes.
const needle = `      if (data[i] instanceof Uint8Array) {
        arr[i] = parseDecimal(data[i]) * factor
      } else {
        arr[i] = Number(data[i]) * factor
      }`

const exact = `
function __exactDecimal(v, scale) {
  let n
  if (v instanceof Uint8Array) {
    n = 0n
    for (const b of v) n = (n << 8n) | BigInt(b)
    if (v.length && v[0] & 0x80) n -= 1n << BigInt(8 * v.length)
  } else {
    n = BigInt(v)
  }
  const neg = n < 0n
  let digits = (neg ? -n : n).toString().padStart(scale + 1, '0')
  const int = digits.slice(0, digits.length - scale)
  const frac = scale ? '.' + digits.slice(digits.length - scale) : ''
  return (neg ? '-' : '') + int + frac
}
`

export async function load(url, context, nextLoad) {
  const result = await nextLoad(url, context)
  if (!url.endsWith('/hyparquet/src/convert.js')) return result
  const source = String(result.source)
  if (!source.includes(needle)) throw new Error('exact-decimals: hyparquet\'s decimal conversion changed; update the hook')
  return { ...result, source: source.replace(needle, '      arr[i] = __exactDecimal(data[i], scale)') + exact }
}
