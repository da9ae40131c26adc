// Reads an Iceberg table with icebird (JavaScript, no code shared with
// iceberg-go) from a metadata file, and prints per value of a grouping
// column the rows and the exact sums of decimal columns, as JSON:
//
//   node sum.mjs <table folder> <metadata file name> <group column> <decimal column>...
//
// Decimals are read exactly (exact-decimals.mjs) and summed with BigInt
// at scale 18, so the sums are to the last digit.
import { register } from 'node:module'
import './fileshim.mjs'

register('./exact-decimals.mjs', import.meta.url)

const [tableDir, metadataFileName, group, ...columns] = process.argv.slice(2)
const { icebergRead } = await import('icebird')
const rows = await icebergRead({ tableUrl: 'file://' + tableDir, metadataFileName })

const SCALE = 18
function units(s) {
  const neg = s.startsWith('-')
  const [int, frac = ''] = (neg ? s.slice(1) : s).split('.')
  if (frac.length > SCALE) throw new Error(`decimal ${s} has more than ${SCALE} fractional digits`)
  const n = BigInt(int + frac.padEnd(SCALE, '0'))
  return neg ? -n : n
}
function text(n) {
  const neg = n < 0n
  const digits = (neg ? -n : n).toString().padStart(SCALE + 1, '0')
  const frac = digits.slice(digits.length - SCALE).replace(/0+$/, '')
  return (neg ? '-' : '') + digits.slice(0, digits.length - SCALE) + (frac ? '.' + frac : '')
}
const totals = {}
for (const r of rows) {
  const t = totals[r[group]] ??= { rows: 0, sums: Object.fromEntries(columns.map(c => [c, 0n])) }
  t.rows++
  for (const c of columns) {
    const v = r[c]
    if (v === null || v === undefined) continue
    if (typeof v !== 'string') throw new Error(`column ${c} is not an exact decimal: ${typeof v}`)
    t.sums[c] += units(v)
  }
}
const out = {}
for (const [key, t] of Object.entries(totals)) {
  out[key] = { rows: t.rows, ...Object.fromEntries(columns.map(c => [c, text(t.sums[c])])) }
}
console.log(JSON.stringify(out))
