// DuckDB's side of `costlake bench --duckdb`, run by Node. It prints what
// it did as one JSON line. Two jobs:
//
//   node bench.mjs '{"convert":{"files":[...],"output":"…/out.parquet","all_varchar":false},"threads":2}'
//
// converts csv.gz files to one zstd Parquet file; the timed part is the
// COPY statement alone, and the row count printed is read back from the
// Parquet file it wrote.
//
//   node bench.mjs '{"read_back":{"files":[...],"accounts":["…"]},"threads":2}'
//
// reads the Parquet files costlake committed, as an independent reader:
// every value of every column, then rows and unblended cost in all and per
// usage account, each account with a filter DuckDB may answer by skipping
// row groups on their min/max statistics.
import { DuckDBInstance } from '@duckdb/node-api'

const spec = JSON.parse(process.argv[2])
const lit = (s) => "'" + String(s).replaceAll("'", "''") + "'"

const db = await DuckDBInstance.create(':memory:', { threads: String(spec.threads) })
const con = await db.connect()
const one = async (sql) => (await con.runAndReadAll(sql)).getRows()[0]
const [version, threads] = await one("SELECT version(), current_setting('threads')")

let result
if (spec.convert) {
  const c = spec.convert
  const options = ['header = true']
  if (c.all_varchar) options.push('all_varchar = true')
  const copy = `COPY (SELECT * FROM read_csv([${c.files.map(lit).join(', ')}], ${options.join(', ')}))` +
    ` TO ${lit(c.output)} (FORMAT parquet, COMPRESSION zstd)`

  const start = performance.now()
  const [copied] = await one(copy)
  const seconds = (performance.now() - start) / 1000

  const [rows] = await one(`SELECT count(*) FROM read_parquet(${lit(c.output)})`)
  const [columns, varchars] = await one(
    `SELECT count(*), count(*) FILTER (WHERE column_type = 'VARCHAR') FROM (DESCRIBE SELECT * FROM read_parquet(${lit(c.output)}))`)
  result = {
    copied_rows: Number(copied),
    rows: Number(rows),
    columns: Number(columns),
    varchar_columns: Number(varchars),
    seconds,
  }
} else if (spec.read_back) {
  const r = spec.read_back
  const src = `read_parquet([${r.files.map(lit).join(', ')}])`
  const cost = 'CAST(coalesce(sum(line_item_unblended_cost), 0) AS VARCHAR)'
  // hash(t) is a function of the whole row: every page of every column is
  // decoded.
  const [rows, total, , columns] = await one(
    `SELECT count(*), ${cost}, bit_xor(hash(t)), (SELECT count(*) FROM (DESCRIBE SELECT * FROM ${src})) FROM ${src} AS t`)
  const accounts = []
  for (const a of r.accounts) {
    const [n, c] = await one(`SELECT count(*), ${cost} FROM ${src} WHERE line_item_usage_account_id = ${lit(a)}`)
    accounts.push({ account: a, rows: Number(n), unblended_cost: c })
  }
  result = { files: r.files.length, rows: Number(rows), columns: Number(columns), unblended_cost: total, accounts }
} else {
  throw new Error('nothing to do: the spec has neither convert nor read_back')
}

process.stdout.write(JSON.stringify({ duckdb_version: version, threads: Number(threads), ...result }) + '\n')
process.exit(0)
