package export

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/smithy-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/api/googleapi"

	"github.com/costlake/costlake/internal/billing"
	"github.com/costlake/costlake/internal/blob"
	"github.com/costlake/costlake/internal/money"
)

var ctx = context.Background()

func amt(s string) money.Amount { return money.MustParse(s) }

// sampleRows returns n rows over three linked accounts with awkward
// amounts (18 fractional digits, negatives, quotes and commas in text).
func sampleRows(n int) []Row {
	rows := make([]Row, n)
	accounts := []string{"111111111111", "222222222222", "333333333333"}
	start := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
	for i := range rows {
		rate := amt("0.0000000000000001")
		rows[i] = Row{
			InvoiceID: "Estimated", PayerAccountID: "999999999999", LinkedAccountID: accounts[i%3],
			RecordID: fmt.Sprint(1000 + i), ProductName: "Amazon Elastic Compute Cloud", RateID: "123",
			UsageType: "BoxUsage:t3.micro", Operation: "RunInstances", AvailabilityZone: "us-east-1a",
			ReservedInstance: "N", ItemDescription: fmt.Sprintf(`$0.0104 per "On Demand", Linux t3.micro #%d`, i),
			UsageStartDate: start.Add(time.Duration(i) * time.Hour), UsageEndDate: start.Add(time.Duration(i+1) * time.Hour),
			UsageQuantity: amt("1"), BlendedRate: rate, UnBlendedRate: rate,
			BlendedCost:   amt(fmt.Sprintf("%d.000000000000000001", i)),
			UnBlendedCost: amt(fmt.Sprintf("-%d.123456789012345678", i)),
			ResourceID:    fmt.Sprintf("i-%08d", i),
			Tags:          map[string]string{"user:Name": fmt.Sprintf("web,%d", i)},
			Resale:        amt(fmt.Sprintf("%d.5", i)),
		}
	}
	return rows
}

func writeAll(t *testing.T, store blob.Store, spec Spec, rows []Row) *Manifest {
	t.Helper()
	w, err := NewWriter(ctx, store, spec)
	require.NoError(t, err)
	for i := range rows {
		require.NoError(t, w.Write(&rows[i]))
	}
	m, err := w.Close()
	require.NoError(t, err)
	return m
}

// readCSV reads one export file back, checking its size and SHA-256
// against the manifest entry.
func readCSV(t *testing.T, store blob.Store, f File, gz bool) [][]string {
	t.Helper()
	rc, err := store.Open(ctx, f.Key)
	require.NoError(t, err)
	raw, err := io.ReadAll(rc)
	rc.Close()
	require.NoError(t, err)
	sum := sha256.Sum256(raw)
	assert.Equal(t, f.SHA256, hex.EncodeToString(sum[:]), f.Key)
	assert.Equal(t, f.Bytes, int64(len(raw)), f.Key)
	var r io.Reader = bytes.NewReader(raw)
	if gz {
		zr, err := gzip.NewReader(r)
		require.NoError(t, err, f.Key)
		r = zr
	}
	recs, err := csv.NewReader(r).ReadAll()
	require.NoError(t, err, f.Key)
	return recs
}

func keysOf(t *testing.T, store blob.Store, prefix string) []string {
	t.Helper()
	infos, err := store.List(ctx, prefix)
	require.NoError(t, err)
	var keys []string
	for _, in := range infos {
		keys = append(keys, in.Key)
	}
	return keys
}

func TestNamingAndSplit(t *testing.T) {
	for _, gz := range []bool{false, true} {
		t.Run(fmt.Sprint("gzip=", gz), func(t *testing.T) {
			store := blob.NewLocal(t.TempDir())
			spec := Spec{AccountID: "999999999999", Period: "2024-03", Mode: AtCost, Prefix: "billing/dbr", Gzip: gz, MaxRowsPerFile: 2, TagKeys: []string{"user:Name"}}
			rows := sampleRows(5)
			m := writeAll(t, store, spec, rows)
			ext := ".csv"
			if gz {
				ext = ".csv.gz"
			}
			stem := "billing/dbr/999999999999-aws-billing-detailed-line-items-with-resources-and-tags-2024-03"
			want := []string{stem + "-manifest.json", stem + "-part-00001" + ext, stem + "-part-00002" + ext, stem + "-part-00003" + ext}
			assert.Equal(t, want, keysOf(t, store, "billing/"))
			require.Len(t, m.Files, 3)
			assert.Equal(t, []int64{2, 2, 1}, []int64{m.Files[0].Rows, m.Files[1].Rows, m.Files[2].Rows})

			var got [][]string
			for _, f := range m.Files {
				recs := readCSV(t, store, f, gz)
				assert.Equal(t, append(append([]string{}, Header...), "user:Name"), recs[0])
				got = append(got, recs[1:]...)
			}
			require.Len(t, got, 5)
			for i, rec := range got {
				r := rows[i]
				assert.Equal(t, []string{
					"Estimated", "999999999999", r.LinkedAccountID, "LineItem", r.RecordID,
					"Amazon Elastic Compute Cloud", "123", "", "", "BoxUsage:t3.micro", "RunInstances", "us-east-1a", "N",
					r.ItemDescription, r.UsageStartDate.Format(DateLayout), r.UsageEndDate.Format(DateLayout), "1",
					"0.0000000000000001", r.BlendedCost.String(), "0.0000000000000001", r.UnBlendedCost.String(),
					r.ResourceID, r.Tags["user:Name"],
				}, rec)
			}
			assert.Equal(t, "2024-03-01 00:00:00", got[0][14])
			assert.Equal(t, "-4.123456789012345678", got[4][20])

			back, err := ReadManifest(ctx, store, spec)
			require.NoError(t, err)
			assert.Equal(t, m, back)
			assert.Equal(t, int64(5), back.Totals.Rows)
			assert.Equal(t, "10.000000000000000005", back.Totals.BlendedCost.String())
			assert.Equal(t, "-10.61728394506172839", back.Totals.UnBlendedCost.String())
			assert.Equal(t, "3.000000000000000002", back.Accounts["111111111111"].BlendedCost.String()) // rows 0 and 3
			assert.Equal(t, int64(1), back.Accounts["333333333333"].Rows)
		})
	}
}

func TestSingleFileHasAWSName(t *testing.T) {
	store := blob.NewLocal(t.TempDir())
	spec := Spec{AccountID: "999999999999", Period: "2024-03", Mode: AtCost, Gzip: true, MaxRowsPerFile: 3, DropUndeclaredTags: true}
	m := writeAll(t, store, spec, sampleRows(3)) // exactly MaxRowsPerFile: not split
	require.Len(t, m.Files, 1)
	assert.Equal(t, "999999999999-aws-billing-detailed-line-items-with-resources-and-tags-2024-03.csv.gz", m.Files[0].Key)
	recs := readCSV(t, store, m.Files[0], true)
	assert.Equal(t, Header, recs[0], "no tag columns declared, undeclared tags dropped")
	assert.Len(t, recs, 4)
}

func TestEmptyExportWritesHeader(t *testing.T) {
	store := blob.NewLocal(t.TempDir())
	spec := Spec{AccountID: "999999999999", Period: "2024-02", Mode: AtResale}
	m := writeAll(t, store, spec, nil)
	require.Len(t, m.Files, 1)
	assert.Equal(t, [][]string{Header}, readCSV(t, store, m.Files[0], false))
	assert.Equal(t, int64(0), m.Totals.Rows)
	assert.Equal(t, "0", m.Totals.UnBlendedCost.String())
	assert.Empty(t, m.Accounts)
}

func TestResaleReplacesCostColumns(t *testing.T) {
	store := blob.NewLocal(t.TempDir())
	spec := Spec{AccountID: "999999999999", Period: "2024-03", Mode: AtResale, TagKeys: []string{"user:Name"}}
	rows := sampleRows(4)
	rate := amt("0.0125")
	rows[1].ResaleRate = &rate
	m := writeAll(t, store, spec, rows)
	recs := readCSV(t, store, m.Files[0], false)[1:]
	for i, rec := range recs {
		assert.Equal(t, rows[i].Resale.String(), rec[18], "BlendedCost")
		assert.Equal(t, rows[i].Resale.String(), rec[20], "UnBlendedCost")
		wantRate := ""
		if i == 1 {
			wantRate = "0.0125"
		}
		assert.Equal(t, wantRate, rec[17], "BlendedRate")
		assert.Equal(t, wantRate, rec[19], "UnBlendedRate")
		assert.NotContains(t, strings.Join(rec, ","), rows[i].UnBlendedCost.String(), "no cost leaks into a resale file")
	}
	assert.Equal(t, "8", m.Totals.UnBlendedCost.String()) // 0.5+1.5+2.5+3.5
	assert.Equal(t, "8", m.Totals.BlendedCost.String())
	assert.Equal(t, "4", m.Accounts["111111111111"].UnBlendedCost.String()) // rows 0 and 3
	assert.Equal(t, AtResale, m.Mode)
}

func TestExactAmountsNoExponent(t *testing.T) {
	store := blob.NewLocal(t.TempDir())
	spec := Spec{AccountID: "1", Period: "2024-03", Mode: AtCost}
	rows := []Row{
		{LinkedAccountID: "a", UnBlendedCost: amt("1E-18"), BlendedCost: amt("-99999999999999999999.999999999999999999"), UsageQuantity: amt("5.0E-5")},
		{LinkedAccountID: "a", UnBlendedCost: amt("1.5E3"), BlendedCost: amt("0.1"), UsageQuantity: amt("0")},
	}
	m := writeAll(t, store, spec, rows)
	recs := readCSV(t, store, m.Files[0], false)
	assert.Equal(t, []string{"0.000000000000000001", "1500"}, []string{recs[1][20], recs[2][20]})
	assert.Equal(t, "-99999999999999999999.999999999999999999", recs[1][18])
	assert.Equal(t, "0.00005", recs[1][16])
	assert.Equal(t, "1500.000000000000000001", m.Totals.UnBlendedCost.String())
	assert.Equal(t, "-99999999999999999999.899999999999999999", m.Accounts["a"].BlendedCost.String())
	raw, err := os.ReadFile(filepath.Join(store.String()[len("file://"):], m.Files[0].Key))
	require.NoError(t, err)
	assert.NotRegexp(t, `[0-9][eE][-+]?[0-9]`, string(raw))
	assert.True(t, strings.HasPrefix(string(raw), `"InvoiceID","PayerAccountId",`), "every field quoted, as AWS did")
}

func TestRerunRemovesStaleFilesOnly(t *testing.T) {
	store := blob.NewLocal(t.TempDir())
	spec := Spec{AccountID: "999999999999", Period: "2024-03", Mode: AtCost, Prefix: "dbr", MaxRowsPerFile: 2, TagKeys: []string{"user:Name"}}
	// Neighbours that must survive: another month, another account, and
	// a file whose name merely starts like this export's.
	other := spec
	other.Period = "2024-04"
	writeAll(t, store, other, sampleRows(3))
	other2 := spec
	other2.AccountID = "99999999999"
	writeAll(t, store, other2, sampleRows(1))
	foreign := "dbr/999999999999-aws-billing-detailed-line-items-with-resources-and-tags-2024-03-notes.txt"
	require.NoError(t, store.Put(ctx, foreign, strings.NewReader("keep me")))

	writeAll(t, store, spec, sampleRows(7)) // 4 parts
	before := keysOf(t, store, "dbr/")
	m := writeAll(t, store, spec, sampleRows(3)) // 2 parts
	require.Len(t, m.Files, 2)
	after := keysOf(t, store, "dbr/")
	assert.Len(t, before, len(after)+2)
	assert.NotContains(t, after, spec.FileKey(3, true))
	assert.NotContains(t, after, spec.FileKey(4, true))
	assert.Contains(t, after, foreign)

	// Unsplit and gzipped now: every earlier part goes, the single file stays.
	spec.Gzip, spec.MaxRowsPerFile = true, 10
	m = writeAll(t, store, spec, sampleRows(3))
	got := keysOf(t, store, "dbr/"+spec.Stem())
	assert.ElementsMatch(t, []string{spec.FileKey(1, false), spec.ManifestKey(), foreign}, got)
	assert.Equal(t, []File{m.Files[0]}, m.Files)

	// The neighbours are intact.
	om, err := ReadManifest(ctx, store, other)
	require.NoError(t, err)
	for _, f := range om.Files {
		_, err := store.Stat(ctx, f.Key)
		require.NoError(t, err)
	}
	_, err = ReadManifest(ctx, store, other2)
	require.NoError(t, err)
}

// recorder logs the writes and deletes a store sees, and can fail one.
type recorder struct {
	blob.Store
	mu      sync.Mutex
	ops     []string
	failPut string // substring of a key whose Put fails
}

func (r *recorder) Put(ctx context.Context, key string, body io.Reader) error {
	r.mu.Lock()
	r.ops = append(r.ops, "put "+key)
	r.mu.Unlock()
	if r.failPut != "" && strings.Contains(key, r.failPut) {
		return errors.New("injected failure")
	}
	return r.Store.Put(ctx, key, body)
}

func (r *recorder) Delete(ctx context.Context, key string) error {
	r.mu.Lock()
	r.ops = append(r.ops, "delete "+key)
	r.mu.Unlock()
	return r.Store.Delete(ctx, key)
}

func TestManifestFirstRemovedAndWrittenLast(t *testing.T) {
	rec := &recorder{Store: blob.NewLocal(t.TempDir())}
	spec := Spec{AccountID: "999999999999", Period: "2024-03", Mode: AtCost, MaxRowsPerFile: 2, DropUndeclaredTags: true}
	writeAll(t, rec, spec, sampleRows(5))
	rec.ops = nil
	writeAll(t, rec, spec, sampleRows(1))
	assert.Equal(t, []string{
		"delete " + spec.ManifestKey(),
		"put " + spec.FileKey(1, false),
		"delete " + spec.FileKey(1, true),
		"delete " + spec.FileKey(2, true),
		"delete " + spec.FileKey(3, true),
		"put " + spec.ManifestKey(),
	}, rec.ops)
}

func TestFailedRunLeavesNoManifest(t *testing.T) {
	rec := &recorder{Store: blob.NewLocal(t.TempDir())}
	spec := Spec{AccountID: "999999999999", Period: "2024-03", Mode: AtCost, MaxRowsPerFile: 2, DropUndeclaredTags: true}
	writeAll(t, rec, spec, sampleRows(3))
	rec.failPut = "part-00002"
	w, err := NewWriter(ctx, rec, spec)
	require.NoError(t, err)
	rows := sampleRows(5)
	var werr error
	for i := range rows {
		if werr = w.Write(&rows[i]); werr != nil {
			break
		}
	}
	require.ErrorContains(t, werr, "injected failure")
	_, err = w.Close()
	require.ErrorContains(t, err, "injected failure")
	_, err = ReadManifest(ctx, rec, spec)
	require.ErrorIs(t, err, blob.ErrNotFound)
	tmp, _ := filepath.Glob(filepath.Join(os.TempDir(), "costlake-export-*.part"))
	for _, p := range tmp {
		st, err := os.Stat(p)
		if err == nil && time.Since(st.ModTime()) < time.Minute {
			t.Errorf("spooled part left behind: %s", p)
		}
	}
}

func TestUndeclaredTag(t *testing.T) {
	store := blob.NewLocal(t.TempDir())
	spec := Spec{AccountID: "999999999999", Period: "2024-03", Mode: AtCost, TagKeys: []string{"user:Team"}}
	w, err := NewWriter(ctx, store, spec)
	require.NoError(t, err)
	r := sampleRows(1)[0]
	require.ErrorIs(t, w.Write(&r), ErrUndeclaredTag)
	_, err = w.Close()
	require.ErrorIs(t, err, ErrUndeclaredTag)
	_, err = ReadManifest(ctx, store, spec)
	require.ErrorIs(t, err, blob.ErrNotFound)
}

func TestSpecValidate(t *testing.T) {
	good := Spec{AccountID: "999999999999", Period: "2024-03", Mode: AtCost}
	require.NoError(t, good.Validate())
	for name, mut := range map[string]func(*Spec){
		"account":   func(s *Spec) { s.AccountID = "a/b" },
		"period":    func(s *Spec) { s.Period = "2024-13" },
		"mode":      func(s *Spec) { s.Mode = "retail" },
		"prefix":    func(s *Spec) { s.Prefix = "/x/" },
		"rows":      func(s *Spec) { s.MaxRowsPerFile = -1 },
		"dup tag":   func(s *Spec) { s.TagKeys = []string{"user:A", "user:A"} },
		"fixed tag": func(s *Spec) { s.TagKeys = []string{"ResourceId"} },
		"empty tag": func(s *Spec) { s.TagKeys = []string{""} },
	} {
		s := good
		mut(&s)
		assert.ErrorIs(t, s.Validate(), ErrBadSpec, name)
	}
}

func TestOwns(t *testing.T) {
	s := Spec{AccountID: "1", Period: "2024-03", Prefix: "p"}
	stem := "p/1-aws-billing-detailed-line-items-with-resources-and-tags-2024-03"
	for key, want := range map[string]bool{
		stem + ".csv": true, stem + ".csv.gz": true, stem + "-part-00007.csv.gz": true, stem + "-part-123456.csv": true,
		stem + "-manifest.json": true, stem + ".csv.bak": false, stem + "-part-1.csv": false, stem + "-notes.txt": false,
		"q/1-aws-billing-detailed-line-items-with-resources-and-tags-2024-03.csv":  false,
		"p/11-aws-billing-detailed-line-items-with-resources-and-tags-2024-03.csv": false,
	} {
		assert.Equal(t, want, s.owns(key), key)
	}
}

func TestFromRecord(t *testing.T) {
	rec := billing.NewRecord()
	set := func(col, v string) { rec.Values[billing.MustIndex(col)] = v }
	set(billing.ColPayerAccountID, "999999999999")
	set(billing.ColUsageAccountID, "111111111111")
	set(billing.ColLineItemID, "abc")
	set(billing.ColLineItemType, "DiscountedUsage")
	set(billing.ColProductCode, "AmazonEC2")
	set("line_item_usage_type", "BoxUsage:m5.large")
	set("line_item_operation", "RunInstances")
	set("line_item_availability_zone", "eu-west-1b")
	set("line_item_line_item_description", "desc")
	set(billing.ColUsageStartDate, "2024-03-01T00:00:00Z")
	set("line_item_usage_end_date", "2024-03-01 01:00:00")
	set("line_item_usage_amount", "1.5E0")
	set(billing.ColUnblendedCost, "0.000000000000000001")
	set("line_item_unblended_rate", "0.096")
	set("line_item_resource_id", "i-1")
	set("pricing_rate_id", "42")
	set("reservation_subscription_id", "77")
	tags := billing.MustIndex(billing.ColResourceTags)
	rec.Entries[tags] = []billing.Entry{{Key: "user_cost_center", Value: "cc1"}, {Key: "aws_created_by", Value: "me"}, {Key: "user:CostCenter", Value: "CC"}}
	rec.Entries[billing.MustIndex(billing.ColProduct)] = []billing.Entry{{Key: "product_name", Value: "Amazon Elastic Compute Cloud"}}

	var r Row
	require.NoError(t, FromRecord(rec, &r, nil))
	assert.Equal(t, "Estimated", r.InvoiceID)
	assert.Equal(t, "Amazon Elastic Compute Cloud", r.ProductName)
	assert.Equal(t, "Y", r.ReservedInstance)
	assert.Equal(t, "42", r.RateID)
	assert.Equal(t, "77", r.SubscriptionID)
	assert.Equal(t, time.Date(2024, 3, 1, 1, 0, 0, 0, time.UTC), r.UsageEndDate)
	assert.Equal(t, "1.5", r.UsageQuantity.String())
	assert.Equal(t, "0.000000000000000001", r.UnBlendedCost.String())
	assert.True(t, r.BlendedCost.IsZero())
	assert.Equal(t, map[string]string{"user:cost_center": "cc1", "aws:createdBy": "me", "user:CostCenter": "CC"}, r.Tags)

	set(billing.ColBillInvoiceID, "INV-1")
	rec.Entries[billing.MustIndex(billing.ColProduct)] = nil
	set(billing.ColUnblendedCost, "1.2.3")
	require.Error(t, FromRecord(rec, &r, nil))
	set(billing.ColUnblendedCost, "1")
	require.NoError(t, FromRecord(rec, &r, nil))
	assert.Equal(t, "INV-1", r.InvoiceID)
	assert.Equal(t, "AmazonEC2", r.ProductName)
}

// TestTagNames: keys as AWS wrote them are their own columns; snake-case
// keys (CUR 2.0) get the legacy prefix back; no two keys share a column.
func TestTagNames(t *testing.T) {
	keys := []string{"aws:createdBy", "aws_created_by", "user:CostCenter", "user:cost-center", "user:cost_center", "user:costcenter", "user_cost_center", "user_env"}
	names := NewTagNames(keys)
	assert.Equal(t, []string{"aws:createdBy", "resourceTags/aws_created_by", "user:CostCenter", "user:cost-center", "user:cost_center",
		"user:costcenter", "resourceTags/user_cost_center", "user:env"}, names.Columns(keys))
	assert.Equal(t, "user:Other", names.Column("user:Other"))

	rec := billing.NewRecord()
	rec.Entries[billing.MustIndex(billing.ColResourceTags)] = []billing.Entry{{Key: "user:cost_center", Value: "a"}, {Key: "user_cost_center", Value: "b"}}
	var r Row
	require.NoError(t, FromRecord(rec, &r, names))
	assert.Equal(t, map[string]string{"user:cost_center": "a", "resourceTags/user_cost_center": "b"}, r.Tags, "never merged")
	spec := Spec{AccountID: "1", Period: "2024-03", Mode: AtCost, TagKeys: names.Columns(keys)}
	assert.NoError(t, spec.Validate())
}

func TestClassify(t *testing.T) {
	denied := &smithy.GenericAPIError{Code: "AccessDenied", Message: "Access Denied."}
	cases := []struct {
		name    string
		kind    kind
		step    string
		err     error
		reason  Reason
		missing string
	}{
		{"s3 put denied", kindS3, StepPut, fmt.Errorf("put: %w", &smithy.OperationError{ServiceID: "S3", OperationName: "PutObject", Err: denied}), ReasonPermission, "s3:PutObject"},
		{"s3 delete denied", kindS3, StepDelete, denied, ReasonPermission, "s3:DeleteObject"},
		{"s3 list denied", kindS3, StepList, denied, ReasonPermission, "s3:ListBucket"},
		{"s3 kms", kindS3, StepPut, &smithy.GenericAPIError{Code: "AccessDenied", Message: "User: arn:aws:sts::1:assumed-role/x is not authorized to perform: kms:GenerateDataKey on resource: arn:aws:kms:…"}, ReasonPermission, "kms:GenerateDataKey"},
		{"s3 no bucket", kindS3, StepPut, &smithy.GenericAPIError{Code: "NoSuchBucket"}, ReasonBucketNotFound, ""},
		{"s3 bad key", kindS3, StepPut, &smithy.GenericAPIError{Code: "InvalidAccessKeyId"}, ReasonCredentials, ""},
		{"sts denied", kindS3, StepPut, &smithy.OperationError{ServiceID: "S3", OperationName: "PutObject",
			Err: fmt.Errorf("failed to refresh cached credentials, %w", &smithy.OperationError{ServiceID: "STS", OperationName: "AssumeRole", Err: denied})}, ReasonCredentials, "sts:AssumeRole"},
		{"gcs create denied", kindGCS, StepPut, &googleapi.Error{Code: 403, Message: "x@y.iam.gserviceaccount.com does not have storage.objects.create access to the Google Cloud Storage object."}, ReasonPermission, "storage.objects.create"},
		{"gcs delete denied", kindGCS, StepDelete, &googleapi.Error{Code: 403, Message: "Forbidden"}, ReasonPermission, "storage.objects.delete"},
		{"gcs no bucket", kindGCS, StepPut, &googleapi.Error{Code: 404, Message: "The specified bucket does not exist."}, ReasonBucketNotFound, ""},
		{"gcs unauthenticated", kindGCS, StepList, &googleapi.Error{Code: 401}, ReasonCredentials, ""},
		{"file denied", kindFile, StepPut, fmt.Errorf("open: %w", os.ErrPermission), ReasonPermission, "write permission on the folder"},
		{"other", kindS3, StepPut, errors.New("connection refused"), ReasonError, ""},
	}
	for _, c := range cases {
		e := classify(c.kind, "s3://b", "k", c.step, c.err)
		assert.Equal(t, c.reason, e.Reason, c.name)
		assert.Equal(t, c.missing, e.Missing, c.name)
		r := Result(e)
		assert.False(t, r.OK, c.name)
		assert.Equal(t, c.missing, r.Missing, c.name)
		if c.missing != "" {
			assert.Contains(t, e.Error(), c.missing, c.name)
		}
	}
}

func TestVerifyLocal(t *testing.T) {
	dir := t.TempDir()
	store := blob.NewLocal(dir)
	require.NoError(t, Verify(ctx, store, "exports/acme", VerifyOptions{ReadBack: true}))
	assert.Empty(t, keysOf(t, store, ""), "the probe is removed")
	assert.True(t, Result(nil).OK)

	if os.Geteuid() == 0 {
		t.Log("running as root, which ignores folder permissions: the read-only folder case is not checked")
		return
	}
	ro := filepath.Join(dir, "ro")
	require.NoError(t, os.MkdirAll(ro, 0o555))
	err := Verify(ctx, store, "ro")
	var ve *VerifyError
	require.ErrorAs(t, err, &ve)
	assert.Equal(t, ReasonPermission, ve.Reason)
	assert.Equal(t, StepPut, ve.Step)
}

// TestFormulaCellsNeutralised: text cells (tags, descriptions, names, a
// tag column's name) that a spreadsheet would run as a formula get a
// leading single quote; amounts, negative ones included, stay numbers.
func TestFormulaCellsNeutralised(t *testing.T) {
	store := blob.NewLocal(t.TempDir())
	tag := "user:=cmd"
	spec := Spec{AccountID: "999999999999", Period: "2024-03", Mode: AtCost, TagKeys: []string{"user:Name", tag}}
	rows := sampleRows(1)
	rows[0].ItemDescription = `=HYPERLINK("http://x","y")`
	rows[0].ResourceID = "@SUM(A1:A9)"
	rows[0].UsageType = "+1+2"
	rows[0].Operation = "-2+3"
	rows[0].ProductName = "\tTab"
	rows[0].AvailabilityZone = "\rCR"
	rows[0].Tags = map[string]string{"user:Name": "=1+1", tag: "plain -not a formula"}
	rows[0].UnBlendedCost, rows[0].BlendedCost, rows[0].UsageQuantity = amt("-3.5"), amt("-0.25"), amt("-1")
	m := writeAll(t, store, spec, rows)
	recs := readCSV(t, store, m.Files[0], false)
	head, rec := recs[0], recs[1]
	assert.Equal(t, `'=HYPERLINK("http://x","y")`, rec[13])
	assert.Equal(t, "'@SUM(A1:A9)", rec[21])
	assert.Equal(t, "'+1+2", rec[9])
	assert.Equal(t, "'-2+3", rec[10])
	assert.Equal(t, "'\tTab", rec[5])
	assert.Equal(t, "'\rCR", rec[11])
	assert.Equal(t, "'=1+1", rec[22])
	assert.Equal(t, "plain -not a formula", rec[23])
	assert.Equal(t, "user:=cmd", head[23], "a name with the trigger inside is left alone")
	assert.Equal(t, []string{"-1", "-3.5"}, []string{rec[16], rec[20]}, "amounts are numbers, never quoted")
	assert.Equal(t, "-0.25", rec[18])
	assert.Equal(t, "999999999999", rec[1])

	spec.TagKeys = []string{"=HYPERLINK(1)"}
	rows[0].Tags = nil
	m = writeAll(t, store, spec, rows[:1])
	assert.Equal(t, "'=HYPERLINK(1)", readCSV(t, store, m.Files[0], false)[0][22], "a tag column named by a customer's key")
}
