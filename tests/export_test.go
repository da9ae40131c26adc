package tests

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"fmt"
	"io"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/costlake/costlake/internal/awsauth"
	"github.com/costlake/costlake/internal/blob"
	"github.com/costlake/costlake/internal/export"
	"github.com/costlake/costlake/internal/money"
	"github.com/costlake/costlake/internal/payer"
	"github.com/costlake/costlake/tests/harness"
)

// exportRows builds n line items over three linked accounts, with amounts
// that a float would get wrong (18 fractional digits, large negatives) and
// text that needs CSV quoting.
func exportRows(n int) []export.Row {
	accounts := []string{"111111111111", "222222222222", "333333333333"}
	start := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
	rows := make([]export.Row, n)
	for i := range rows {
		rate := money.MustParse(fmt.Sprintf("0.%018d", 7+i))
		rows[i] = export.Row{
			InvoiceID: "Estimated", PayerAccountID: "999999999999", LinkedAccountID: accounts[i%len(accounts)],
			RecordID: fmt.Sprintf("rec-%06d", i), ProductName: "Amazon Simple Storage Service",
			RateID: fmt.Sprint(40 + i%5), UsageType: "TimedStorage-ByteHrs", Operation: "StandardStorage",
			ReservedInstance: "N", ItemDescription: fmt.Sprintf(`$0.023 per GB-Month, "standard", #%d`, i),
			UsageStartDate: start.Add(time.Duration(i) * time.Hour), UsageEndDate: start.Add(time.Duration(i+1) * time.Hour),
			UsageQuantity: money.MustParse(fmt.Sprintf("%d.25E-3", i)),
			BlendedRate:   rate, UnBlendedRate: rate,
			BlendedCost:   money.MustParse(fmt.Sprintf("%d.%018d", i, i+1)),
			UnBlendedCost: money.MustParse(fmt.Sprintf("-%d.%018d", 12345678901234+i, 3*i+1)),
			ResourceID:    fmt.Sprintf("bucket-%d", i),
			Tags:          map[string]string{"user:Team": fmt.Sprintf("team,%d", i%4), "aws:createdBy": "IAMUser:x"},
			Resale:        money.MustParse(fmt.Sprintf("%d.%017d9", i, i)),
		}
		// Cells a spreadsheet would run as formulas: tags and names come
		// from customers.
		switch i % 6 {
		case 0:
			rows[i].ItemDescription = fmt.Sprintf(`=cmd|' /C calc'!A0 #%d`, i)
			rows[i].Tags["user:Team"] = "+team"
		case 1:
			rows[i].ResourceID, rows[i].Operation = fmt.Sprintf("@bucket-%d", i), "-Storage"
		case 2:
			rows[i].Tags["aws:createdBy"], rows[i].UsageType = "\tIAMUser:x", "\rTimed"
			rows[i].UsageQuantity, rows[i].BlendedCost = money.MustParse("-3.5"), money.MustParse("-3.5")
		}
	}
	return rows
}

// neutralised is a text cell as a spreadsheet-safe export prints it:
// a leading single quote before =, +, -, @, tab or carriage return.
func neutralised(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

var exportTags = []string{"user:Team", "aws:createdBy"}

// wantFields is what the report must hold for r, written out here rather
// than through the package so the test checks the format independently.
func wantFields(r export.Row, mode export.Mode) []string {
	br, bc, ur, uc := r.BlendedRate.String(), r.BlendedCost.String(), r.UnBlendedRate.String(), r.UnBlendedCost.String()
	if mode == export.AtResale {
		br, ur, bc, uc = "", "", r.Resale.String(), r.Resale.String()
	}
	n := neutralised
	return []string{
		n(r.InvoiceID), n(r.PayerAccountID), n(r.LinkedAccountID), "LineItem", n(r.RecordID), n(r.ProductName), n(r.RateID),
		n(r.SubscriptionID), n(r.PricingPlanID), n(r.UsageType), n(r.Operation), n(r.AvailabilityZone), n(r.ReservedInstance),
		n(r.ItemDescription), r.UsageStartDate.Format("2006-01-02 15:04:05"), r.UsageEndDate.Format("2006-01-02 15:04:05"),
		r.UsageQuantity.String(), br, bc, ur, uc, n(r.ResourceID), n(r.Tags["user:Team"]), n(r.Tags["aws:createdBy"]),
	}
}

type exportSums struct {
	rows               int64
	blended, unblended money.Amount
}

func runExport(t *testing.T, store blob.Store, spec export.Spec, rows []export.Row) *export.Manifest {
	t.Helper()
	ctx := context.Background()
	w, err := export.NewWriter(ctx, store, spec)
	require.NoError(t, err)
	for i := range rows {
		require.NoError(t, w.Write(&rows[i]))
	}
	m, err := w.Close()
	require.NoError(t, err)
	return m
}

// checkExport reads every object of the export back from the store and
// checks them against the input rows and the manifest: nothing missing,
// nothing extra, totals exact.
func checkExport(t *testing.T, store blob.Store, spec export.Spec, rows []export.Row) {
	t.Helper()
	ctx := context.Background()
	m, err := export.ReadManifest(ctx, store, spec)
	require.NoError(t, err)
	assert.Equal(t, spec.Mode, m.Mode)
	assert.Equal(t, spec.Period, m.Period)

	// The prefix holds exactly the manifest's files and the manifest.
	infos, err := store.List(ctx, spec.Prefix+"/")
	require.NoError(t, err)
	var keys, want []string
	for _, in := range infos {
		keys = append(keys, in.Key)
	}
	for _, f := range m.Files {
		want = append(want, f.Key)
	}
	want = append(want, spec.ManifestKey())
	sort.Strings(want)
	require.Equal(t, want, keys, "objects under %s", spec.Prefix)

	header := append(append([]string{}, export.Header...), exportTags...)
	var got [][]string
	var rowsInFiles int64
	for _, f := range m.Files {
		rc, err := store.Open(ctx, f.Key)
		require.NoError(t, err)
		raw, err := io.ReadAll(rc)
		rc.Close()
		require.NoError(t, err)
		sum := sha256.Sum256(raw)
		assert.Equal(t, f.SHA256, hex.EncodeToString(sum[:]), "sha256 of %s", f.Key)
		assert.Equal(t, f.Bytes, int64(len(raw)), "size of %s", f.Key)
		var r io.Reader = bytes.NewReader(raw)
		if spec.Gzip {
			require.True(t, strings.HasSuffix(f.Key, ".csv.gz"), f.Key)
			zr, err := gzip.NewReader(r)
			require.NoError(t, err, f.Key)
			r = zr
		} else {
			require.True(t, strings.HasSuffix(f.Key, ".csv"), f.Key)
		}
		recs, err := csv.NewReader(r).ReadAll()
		require.NoError(t, err, f.Key)
		require.Equal(t, header, recs[0], f.Key)
		assert.Equal(t, f.Rows, int64(len(recs)-1), "rows of %s", f.Key)
		assert.LessOrEqual(t, f.Rows, int64(spec.MaxRowsPerFile))
		rowsInFiles += f.Rows
		got = append(got, recs[1:]...)
	}
	require.Len(t, got, len(rows), "no row lost, none duplicated")
	assert.Equal(t, int64(len(rows)), rowsInFiles)

	// Field by field, and totals per account: from the input, from the
	// parsed CSV, and from the manifest, all equal to the last digit.
	fromInput := map[string]*exportSums{}
	fromCSV := map[string]*exportSums{}
	add := func(m map[string]*exportSums, acct string, b, u money.Amount) {
		s := m[acct]
		if s == nil {
			s = &exportSums{}
			m[acct] = s
		}
		s.rows++
		s.blended = s.blended.Add(b)
		s.unblended = s.unblended.Add(u)
	}
	for i, r := range rows {
		require.Equal(t, wantFields(r, spec.Mode), got[i], "row %d", i)
		b, u := r.BlendedCost, r.UnBlendedCost
		if spec.Mode == export.AtResale {
			b, u = r.Resale, r.Resale
		}
		add(fromInput, r.LinkedAccountID, b, u)
		add(fromCSV, got[i][2], money.MustParse(got[i][18]), money.MustParse(got[i][20]))
	}
	require.Len(t, m.Accounts, len(fromInput))
	var all exportSums
	for acct, in := range fromInput {
		c, mt := fromCSV[acct], m.Accounts[acct]
		require.Equal(t, *in, *c, "CSV totals of %s", acct)
		assert.Equal(t, in.rows, mt.Rows, acct)
		assert.Equal(t, in.blended.String(), mt.BlendedCost.String(), acct)
		assert.Equal(t, in.unblended.String(), mt.UnBlendedCost.String(), acct)
		all.rows += in.rows
		all.blended = all.blended.Add(in.blended)
		all.unblended = all.unblended.Add(in.unblended)
	}
	assert.Equal(t, all.rows, m.Totals.Rows)
	assert.Equal(t, all.blended.String(), m.Totals.BlendedCost.String())
	assert.Equal(t, all.unblended.String(), m.Totals.UnBlendedCost.String())
}

// exportRoundTrips writes at cost and at resale, gzipped or not, reruns
// each export smaller, and checks everything read back.
func exportRoundTrips(t *testing.T, store blob.Store) {
	for _, mode := range []export.Mode{export.AtCost, export.AtResale} {
		for _, gz := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/gzip=%v", mode, gz), func(t *testing.T) {
				spec := export.Spec{
					AccountID: "999999999999", Period: "2024-05", Mode: mode, Gzip: gz,
					Prefix:         fmt.Sprintf("customers/acme/%s-gzip-%v", mode, gz),
					MaxRowsPerFile: 40, TagKeys: exportTags,
				}
				rows := exportRows(130) // 4 parts
				m := runExport(t, store, spec, rows)
				require.Len(t, m.Files, 4)
				assert.Equal(t, spec.FileKey(1, true), m.Files[0].Key)
				checkExport(t, store, spec, rows)

				// Rerun of the same export: same keys, same bytes.
				again := runExport(t, store, spec, rows)
				assert.Equal(t, m, again)
				checkExport(t, store, spec, rows)

				// Rerun smaller: parts 3 and 4 of the earlier run disappear.
				rows = exportRows(70)
				m = runExport(t, store, spec, rows)
				require.Len(t, m.Files, 2)
				checkExport(t, store, spec, rows)

				// Smaller still: one file under AWS's own name, no parts left.
				rows = exportRows(25)
				m = runExport(t, store, spec, rows)
				require.Len(t, m.Files, 1)
				assert.Equal(t, spec.Prefix+"/999999999999-aws-billing-detailed-line-items-with-resources-and-tags-2024-05"+map[bool]string{false: ".csv", true: ".csv.gz"}[gz], m.Files[0].Key)
				checkExport(t, store, spec, rows)
			})
		}
	}
}

// TestExportS3 exports into MinIO through an assumed role (MinIO's STS,
// the real AssumeRole wire protocol), the way the worker reaches a
// customer's bucket.
func TestExportS3(t *testing.T) {
	m := harness.MinIO(t)
	m.CreateBucket(t, "customer-exports")
	t.Setenv("AWS_ENDPOINT_URL_STS", m.Endpoint)
	ctx := context.Background()
	base := credentials.NewStaticCredentialsProvider(m.AccessKey, m.SecretKey, "")
	cfg, err := awsauth.Config(ctx, payer.Access{Mode: payer.AssumeRole, RoleARN: "arn:aws:iam::123456789012:role/costlake-export", ExternalID: "costlake-ext-export"}, base, awsauth.Session{Purpose: "export"})
	require.NoError(t, err)
	o := m.S3Options()
	o.AccessKeyID, o.SecretAccessKey = "", ""
	o.Credentials = cfg.Credentials
	store, err := blob.NewS3(ctx, "customer-exports", o)
	require.NoError(t, err)
	creds, err := cfg.Credentials.Retrieve(ctx)
	require.NoError(t, err)
	require.NotEmpty(t, creds.SessionToken, "the store uses temporary credentials")
	exportRoundTrips(t, store)
}

func TestExportGCS(t *testing.T) {
	g := harness.FakeGCS(t)
	exportRoundTrips(t, g.CreateBucket(t, "customer-exports"))
}

// assumeWithSessionPolicy assumes a role through MinIO's STS with an
// inline session policy; MinIO grants the intersection of the parent's
// policy and the session policy, as AWS does.
func assumeWithSessionPolicy(t *testing.T, m *harness.MinIOServer, policy string) blob.S3Options {
	t.Helper()
	ctx := context.Background()
	cfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion("us-east-1"),
		awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(m.AccessKey, m.SecretKey, "")))
	require.NoError(t, err)
	client := sts.NewFromConfig(cfg, func(o *sts.Options) { o.BaseEndpoint = aws.String(m.Endpoint) })
	out, err := client.AssumeRole(ctx, &sts.AssumeRoleInput{
		RoleArn:         aws.String("arn:aws:iam::123456789012:role/costlake-export"),
		RoleSessionName: aws.String("costlake-verify"),
		Policy:          aws.String(policy),
	})
	require.NoError(t, err)
	o := m.S3Options()
	o.AccessKeyID = aws.ToString(out.Credentials.AccessKeyId)
	o.SecretAccessKey = aws.ToString(out.Credentials.SecretAccessKey)
	o.SessionToken = aws.ToString(out.Credentials.SessionToken)
	return o
}

func sessionPolicy(bucket string, actions ...string) string {
	return fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["%s"],"Resource":["arn:aws:s3:::%s","arn:aws:s3:::%s/*"]}]}`,
		strings.Join(actions, `","`), bucket, bucket)
}

func requireVerifyError(t *testing.T, err error, reason export.Reason, step, missing string) *export.VerifyError {
	t.Helper()
	var ve *export.VerifyError
	require.ErrorAs(t, err, &ve)
	assert.Equal(t, reason, ve.Reason, "%v", err)
	assert.Equal(t, step, ve.Step, "%v", err)
	assert.Equal(t, missing, ve.Missing, "%v", err)
	res := export.Result(err)
	assert.False(t, res.OK)
	assert.Equal(t, missing, res.Missing)
	assert.Equal(t, reason, res.Reason)
	t.Logf("verify answered: %+v", res)
	return ve
}

func TestExportVerifyS3(t *testing.T) {
	m := harness.MinIO(t)
	m.CreateBucket(t, "customer-exports")
	ctx := context.Background()

	t.Run("Writable", func(t *testing.T) {
		s, err := blob.NewS3(ctx, "customer-exports", m.S3Options())
		require.NoError(t, err)
		require.NoError(t, export.Verify(ctx, s, "billing/acme", export.VerifyOptions{ReadBack: true}))
		assert.True(t, export.Result(nil).OK)
		infos, err := s.List(ctx, "")
		require.NoError(t, err)
		assert.Empty(t, infos, "the probe is removed")
	})

	t.Run("ExportPermissionsOnly", func(t *testing.T) {
		// Exactly what exports need: put, list, delete (no GetObject).
		o := assumeWithSessionPolicy(t, m, sessionPolicy("customer-exports", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket"))
		s, err := blob.NewS3(ctx, "customer-exports", o)
		require.NoError(t, err)
		require.NoError(t, export.Verify(ctx, s, "billing/acme"))
		// A read-back needs s3:GetObject, which this session lacks.
		requireVerifyError(t, export.Verify(ctx, s, "billing/acme", export.VerifyOptions{ReadBack: true}), export.ReasonPermission, export.StepGet, "s3:GetObject")
	})

	t.Run("MissingBucket", func(t *testing.T) {
		s, err := blob.NewS3(ctx, "no-such-bucket", m.S3Options())
		require.NoError(t, err)
		ve := requireVerifyError(t, export.Verify(ctx, s, "billing"), export.ReasonBucketNotFound, export.StepPut, "")
		assert.Equal(t, "NoSuchBucket", ve.Code)
		assert.Contains(t, ve.Error(), "bucket no-such-bucket does not exist")
	})

	t.Run("ReadOnly", func(t *testing.T) {
		o := assumeWithSessionPolicy(t, m, sessionPolicy("customer-exports", "s3:GetObject", "s3:ListBucket"))
		s, err := blob.NewS3(ctx, "customer-exports", o)
		require.NoError(t, err)
		// The session really is read-only, and reads work.
		_, err = s.List(ctx, "")
		require.NoError(t, err)
		ve := requireVerifyError(t, export.Verify(ctx, s, "billing/acme"), export.ReasonPermission, export.StepPut, "s3:PutObject")
		assert.Equal(t, "AccessDenied", ve.Code)
		assert.False(t, ve.ProbeLeft)
		assert.Contains(t, export.Result(ve).Message, "s3:PutObject")
	})

	t.Run("NoDelete", func(t *testing.T) {
		// The seed's customer policy grants s3:PutObject alone; exports also
		// delete (stale parts, the previous manifest), so Verify says so.
		o := assumeWithSessionPolicy(t, m, sessionPolicy("customer-exports", "s3:PutObject", "s3:ListBucket"))
		s, err := blob.NewS3(ctx, "customer-exports", o)
		require.NoError(t, err)
		ve := requireVerifyError(t, export.Verify(ctx, s, "billing/nodelete"), export.ReasonPermission, export.StepDelete, "s3:DeleteObject")
		assert.True(t, ve.ProbeLeft)
	})

	t.Run("NoList", func(t *testing.T) {
		o := assumeWithSessionPolicy(t, m, sessionPolicy("customer-exports", "s3:PutObject", "s3:DeleteObject"))
		s, err := blob.NewS3(ctx, "customer-exports", o)
		require.NoError(t, err)
		ve := requireVerifyError(t, export.Verify(ctx, s, "billing/nolist"), export.ReasonPermission, export.StepList, "s3:ListBucket")
		assert.False(t, ve.ProbeLeft, "the probe is still removed")
	})
}

// TestExportVerifyGCS covers what fake-gcs-server can show: a writable
// bucket and a missing one. fake-gcs-server has no IAM: it accepts every
// request unauthenticated and never answers 403, so a read-only GCS
// credential (missing storage.objects.create or storage.objects.delete)
// cannot be tested against it. The mapping of GCS's 403 answers ("… does
// not have storage.objects.create access …") is covered by the unit tests
// of internal/export instead.
func TestExportVerifyGCS(t *testing.T) {
	g := harness.FakeGCS(t)
	store := g.CreateBucket(t, "customer-exports")
	ctx := context.Background()
	require.NoError(t, export.Verify(ctx, store, "billing/acme", export.VerifyOptions{ReadBack: true}))
	infos, err := store.List(ctx, "")
	require.NoError(t, err)
	assert.Empty(t, infos, "the probe is removed")

	missing, err := blob.NewGCS(ctx, "no-such-bucket", g.GCSOptions())
	require.NoError(t, err)
	ve := requireVerifyError(t, export.Verify(ctx, missing, "billing"), export.ReasonBucketNotFound, export.StepPut, "")
	assert.Contains(t, ve.Error(), "bucket no-such-bucket does not exist")
}
