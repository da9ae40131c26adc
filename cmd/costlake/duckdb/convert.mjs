// Converts csv.gz files to one zstd Parquet file with DuckDB, for
// `costlake bench --duckdb`, and prints what it did as one JSON line.
//
//   node convert.mjs '{"files":[...],"output":"…/out.parquet","threads":2,"all_varchar":false}'
//
// The timed part is the COPY statement alone; the row count printed is
// read back from the Parquet file it wrote.
import { DuckDBInstance } from '@duckdb/node-api'

const spec = JSON.parse(process.argv[2])
const lit = (s) => "'" + String(s).replaceAll("'", "''") + "'"

const db = await DuckDBInstance.create(':memory:', { threads: String(spec.threads) })
const con = await db.connect()
const one = async (sql) => (await con.runAndReadAll(sql)).getRows()[0]

const options = ['header = true']
if (spec.all_varchar) options.push('all_varchar = true')
const copy = `COPY (SELECT * FROM read_csv([${spec.files.map(lit).join(', ')}], ${options.join(', ')}))` +
  ` TO ${lit(spec.output)} (FORMAT parquet, COMPRESSION zstd)`

const start = performance.now()
const [copied] = await one(copy)
const seconds = (performance.now() - start) / 1000

const [rows] = await one(`SELECT count(*) FROM read_parquet(${lit(spec.output)})`)
const [columns, varchars] = await one(
  `SELECT count(*), count(*) FILTER (WHERE column_type = 'VARCHAR') FROM (DESCRIBE SELECT * FROM read_parquet(${lit(spec.output)}))`)
const [version, threads] = await one("SELECT version(), current_setting('threads')")

process.stdout.write(JSON.stringify({
  duckdb_version: version,
  threads: Number(threads),
  copied_rows: Number(copied),
  rows: Number(rows),
  columns: Number(columns),
  varchar_columns: Number(varchars),
  seconds,
}) + '\n')
process.exit(0)
