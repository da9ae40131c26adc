package tests

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/costlake/costlake/internal/blob"
	"github.com/costlake/costlake/internal/contract/ingest"
	"github.com/costlake/costlake/internal/cur"
)

// zipChunks splits records (header first) into n .csv.zip files, one CSV each.
func zipChunks(t *testing.T, records [][]string, n int) [][]byte {
	t.Helper()
	header, rows := records[0], records[1:]
	per := (len(rows) + n - 1) / n
	var out [][]byte
	for i := 0; i < n; i++ {
		var buf bytes.Buffer
		zw := zip.NewWriter(&buf)
		f, err := zw.Create(fmt.Sprintf("report-%d.csv", i+1))
		require.NoError(t, err)
		w := csv.NewWriter(f)
		require.NoError(t, w.Write(header))
		require.NoError(t, w.WriteAll(rows[i*per:min((i+1)*per, len(rows))]))
		require.NoError(t, zw.Close())
		out = append(out, buf.Bytes())
	}
	return out
}

// TestIngestLegacyZipAndParquet ingests the sample as the two other legacy
// CUR deliveries: ZIP chunks, and the Athena integration's Parquet under
// <report>/<report>/year=YYYY/month=M/ with snake_case columns and doubles.
func TestIngestLegacyZipAndParquet(t *testing.T) {
	s := newStack(t, true)
	bucket := s.minio.CreateBucket(t, "legacy")
	ctx := context.Background()
	records := readCSV(t, sharedData(t, "aws-legacy-cur-sample/sample-anonymous-aws-export-dataset.csv"))
	wantRows, wantCosts := sourceTotals(t, records)

	t.Run("zip", func(t *testing.T) {
		d := delivery{prefix: "cur", report: "zipped", period: "2023-11", assembly: "20231203T000000Z", payer: samplePayer,
			header: records[0], chunks: zipChunks(t, records, 2)}
		m := d.manifest(t, "legacy")
		m.Compression = "ZIP"
		for i := range m.ReportKeys {
			m.ReportKeys[i] = fmt.Sprintf("%s/%s/%s-%d.csv.zip", d.folder(t), d.assembly, d.report, i+1)
			require.NoError(t, bucket.Put(ctx, m.ReportKeys[i], bytes.NewReader(d.chunks[i])))
		}
		putManifest(t, bucket, d.folder(t)+"/zipped-Manifest.json", m)
		res, err := s.ingest("s3://legacy/cur/zipped", "2023-11")
		require.NoError(t, err)
		require.Equal(t, 2, res.Chunks)
		gotRows, gotCosts := s.tableTotals(samplePayer, "2023-11")
		requireSameTotals(t, wantRows, wantCosts, gotRows, gotCosts)
	})

	t.Run("athena parquet", func(t *testing.T) {
		// The Athena layout renames columns exactly like the CUR 2.0 test
		// helpers do for top-level columns; reuse them for the files.
		tbl := cur2FromLegacy(t, records)
		n := len(tbl.rows)
		d := delivery{prefix: "cur", report: "athena", period: "2023-11", assembly: "20231204T000000Z", payer: samplePayer, header: records[0]}
		m := d.manifest(t, "legacy")
		m.Compression, m.ContentType = "Parquet", "Parquet"
		m.Columns, m.ReportKeys = nil, nil
		for _, c := range append(tbl.columns, "product", "resource_tags") {
			m.Columns = append(m.Columns, cur.ManifestColumn{Name: c, Type: "string"})
		}
		files := [][]byte{tbl.parquetFile(t, 0, n/2), tbl.parquetFile(t, n/2, n)}
		for i, f := range files {
			key := fmt.Sprintf("cur/athena/athena/year=2023/month=11/athena-%05d.snappy.parquet", i+1)
			require.NoError(t, bucket.Put(ctx, key, bytes.NewReader(f)))
			m.ReportKeys = append(m.ReportKeys, key)
		}
		putManifest(t, bucket, d.folder(t)+"/athena-Manifest.json", m)
		res, err := s.ingest("s3://legacy/cur/athena", "2023-11")
		require.NoError(t, err)
		require.Equal(t, 2, res.Chunks)
		gotRows, gotCosts := s.tableTotals(samplePayer, "2023-11")
		requireSameTotals(t, wantRows, wantCosts, gotRows, gotCosts)
	})

	t.Run("unknown compression", func(t *testing.T) {
		d := delivery{prefix: "cur", report: "bzip", period: "2023-11", assembly: "20231205T000000Z", payer: samplePayer,
			header: records[0], chunks: csvChunks(t, records, 1)}
		m := d.manifest(t, "legacy")
		m.Compression = "BZIP2"
		putManifest(t, bucket, d.folder(t)+"/bzip-Manifest.json", m)
		_, err := s.ingest("s3://legacy/cur/bzip", "2023-11")
		typ, msg := failureType(t, err)
		require.Equal(t, ingest.ErrTypeUnsupportedCompression, typ, msg)
		require.Contains(t, msg, "bzip-Manifest.json")
	})
}

func putManifest(t *testing.T, store blob.Store, key string, m cur.Manifest) {
	t.Helper()
	js, err := json.Marshal(m)
	require.NoError(t, err)
	require.NoError(t, store.Put(context.Background(), key, bytes.NewReader(js)))
}
