// Reads billing.line_items with icebird, a JavaScript Iceberg reader that
// shares no code with iceberg-go, and prints rows and unblended cost per
// payer, period and usage account as JSON.
//
//   node read.mjs <table folder> <metadata file name>
//
// icebird fetches over HTTP; fileshim.mjs serves file:// URLs from disk.
import './fileshim.mjs'

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
