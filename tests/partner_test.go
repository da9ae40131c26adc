package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// athenaHeader renames a legacy header the way CUR's Athena integration
// (and partner generators) name columns: "lineItem/UnblendedCost" →
// "line_item_unblended_cost", "resourceTags/user:Name" → "resource_tags_user_name".
func athenaHeader(h string) string {
	cat, name, _ := strings.Cut(h, "/")
	return snake(cat) + "_" + snake(name)
}

// TestIngestPartnerLayoutFromMinIO ingests the sample laid out as a
// partner's CUR generator writes it (the Eco seed):
// RawCURReports/cur/<account>/<yyyymmdd-yyyymmdd>/<assembly>/<files> and
// manifests/<yyyymmdd-yyyymmdd>/<report_id>-Manifest.json, with Athena
// snake_case headers; once with reportKeys in the manifest, once without
// (the files are listed).
func TestIngestPartnerLayoutFromMinIO(t *testing.T) {
	s := newStack(t, true)
	records := readCSV(t, sharedData(t, "aws-legacy-cur-sample/sample-anonymous-aws-export-dataset.csv"))
	athena := [][]string{make([]string, len(records[0]))}
	for i, h := range records[0] {
		athena[0][i] = athenaHeader(h)
	}
	athena = append(athena, records[1:]...)
	chunks := csvChunks(t, athena, 2)
	wantRows, wantCosts := sourceTotals(t, records)

	for _, withKeys := range []bool{true, false} {
		t.Run(fmt.Sprintf("reportKeys=%v", withKeys), func(t *testing.T) {
			name := fmt.Sprintf("eco-%v", withKeys)
			bucket := s.minio.CreateBucket(t, name)
			ctx := context.Background()
			assembly := "a1b2c3d4-" + name
			var keys []string
			for i, c := range chunks {
				key := fmt.Sprintf("RawCURReports/cur/%s/20231101-20231201/%s/cur-%05d.csv.gz", samplePayer, assembly, i+1)
				require.NoError(t, bucket.Put(ctx, key, bytes.NewReader(c)))
				keys = append(keys, key)
			}
			var cols []map[string]string
			for _, h := range athena[0] {
				cols = append(cols, map[string]string{"column_name": h, "data_type": "string"})
			}
			manifest := map[string]any{"assemblyId": assembly, "columns": cols}
			if withKeys {
				manifest["reportKeys"] = keys
			}
			js, err := json.Marshal(manifest)
			require.NoError(t, err)
			require.NoError(t, bucket.Put(ctx, "manifests/20231101-20231201/report-42-Manifest.json", bytes.NewReader(js)))

			res, err := s.ingest("s3://"+name, "2023-11")
			require.NoError(t, err)
			require.Equal(t, samplePayer, res.PayerAccountID)
			require.Equal(t, assembly, res.AssemblyID)
			require.Equal(t, 2, res.Chunks)
			gotRows, gotCosts := s.tableTotals(samplePayer, "2023-11")
			requireSameTotals(t, wantRows, wantCosts, gotRows, gotCosts)
		})
	}
}
