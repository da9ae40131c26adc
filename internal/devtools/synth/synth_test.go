package synth

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/csv"
	"errors"
	"io"
	"math/big"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/costlake/costlake/internal/billing"
	"github.com/costlake/costlake/internal/blob"
	"github.com/costlake/costlake/internal/cur"
	"github.com/costlake/costlake/internal/money"
)

// delivery is a generated delivery read back independently of the generator.
type delivery struct {
	manifest *cur.Manifest
	header   []string
	rows     [][]string // every data row of every chunk, in order
	col      map[string]int
}

func (d *delivery) get(row []string, header string) string { return row[d.col[header]] }

func (d *delivery) dec(t *testing.T, row []string, header string) decimal.Decimal {
	t.Helper()
	v, err := decimal.NewFromString(d.get(row, header))
	require.NoError(t, err, "%s = %q", header, d.get(row, header))
	return v
}

// readDelivery parses the period manifest with cur.ParseManifest and reads
// every chunk it lists with gzip and encoding/csv.
func readDelivery(t *testing.T, store blob.Store, manifestKey string) *delivery {
	t.Helper()
	ctx := context.Background()
	m, err := cur.ParseManifest(readObject(t, store, manifestKey))
	require.NoError(t, err)
	d := &delivery{manifest: m, header: m.Headers(), col: map[string]int{}}
	for i, h := range d.header {
		d.col[h] = i
	}
	for _, key := range m.ReportKeys {
		rc, err := store.Open(ctx, key)
		require.NoError(t, err)
		zr, err := gzip.NewReader(rc)
		require.NoError(t, err)
		r := csv.NewReader(zr)
		r.ReuseRecord = false
		header, err := r.Read()
		require.NoError(t, err)
		require.Equal(t, d.header, header, "chunk %s header", key)
		for {
			rec, err := r.Read()
			if err == io.EOF {
				break
			}
			require.NoError(t, err, key)
			d.rows = append(d.rows, rec)
		}
		require.NoError(t, zr.Close())
		require.NoError(t, rc.Close())
	}
	return d
}

func readObject(t *testing.T, store blob.Store, key string) []byte {
	t.Helper()
	rc, err := store.Open(context.Background(), key)
	require.NoError(t, err)
	defer rc.Close()
	b, err := io.ReadAll(rc)
	require.NoError(t, err)
	return b
}

func TestGenerateDelivery(t *testing.T) {
	ctx := context.Background()
	store := blob.NewLocal(t.TempDir())
	opts := Options{Prefix: "billing/cur", Report: "demo", Bucket: "demo-bucket", Period: "2026-10",
		Rows: 10000, Files: 3, Seed: 42, Payer: "123456789012", LinkedAccounts: 5}
	res, err := Generate(ctx, store, opts)
	require.NoError(t, err)

	// Layout: exactly the period manifest, the assembly manifest and the chunks.
	require.Regexp(t, `^\d{8}T\d{6}Z$`, res.AssemblyID)
	dir := "billing/cur/demo/20261001-20261101/"
	assert.Equal(t, dir+"demo-Manifest.json", res.ManifestKey)
	assert.Equal(t, dir+res.AssemblyID+"/demo-Manifest.json", res.AssemblyManifestKey)
	require.Len(t, res.ReportKeys, 3)
	for i, k := range res.ReportKeys {
		assert.Equal(t, dir+res.AssemblyID+"/demo-"+string(rune('1'+i))+".csv.gz", k)
	}
	infos, err := store.List(ctx, "billing/")
	require.NoError(t, err)
	var keys []string
	for _, in := range infos {
		keys = append(keys, in.Key)
	}
	want := append([]string{res.ManifestKey, res.AssemblyManifestKey}, res.ReportKeys...)
	sort.Strings(want)
	assert.Equal(t, want, keys)
	assert.Equal(t, readObject(t, store, res.ManifestKey), readObject(t, store, res.AssemblyManifestKey),
		"the period manifest is a copy of the assembly manifest")

	d := readDelivery(t, store, res.ManifestKey)
	m := d.manifest
	assert.Equal(t, res.AssemblyID, m.AssemblyID)
	assert.Equal(t, "123456789012", m.Account)
	assert.Equal(t, "GZIP", m.Compression)
	assert.Equal(t, "text/csv", m.ContentType)
	assert.Equal(t, "UTF-8", m.Charset)
	assert.Equal(t, "demo", m.ReportName)
	assert.Equal(t, "demo-bucket", m.Bucket)
	assert.Regexp(t, `^[0-9a-f]{64}$`, m.ReportID)
	assert.Equal(t, cur.ManifestPeriod{Start: "20261001T000000.000Z", End: "20261101T000000.000Z"}, m.BillingPeriod)
	assert.Equal(t, res.ReportKeys, m.ReportKeys)
	period, err := m.Period()
	require.NoError(t, err)
	assert.Equal(t, "2026-10", period)

	// Columns: 100+, unique, typed, all known to the canonical mapping.
	require.GreaterOrEqual(t, len(d.header), 100)
	seen := map[string]bool{}
	for _, c := range m.Columns {
		assert.False(t, seen[c.Header()], "duplicate column %s", c.Header())
		seen[c.Header()] = true
		assert.Contains(t, []string{"String", "OptionalString", "BigDecimal", "OptionalBigDecimal", "DateTime", "Interval"}, c.Type, c.Header())
	}
	_, err = billing.MapLegacyHeader(d.header)
	require.NoError(t, err, "headers must map onto the canonical schema without collisions")
	for _, h := range []string{"lineItem/UnblendedCost", "lineItem/NetUnblendedCost", "product/sku", "pricing/RateCode",
		"reservation/ReservationARN", "reservation/EffectiveCost", "savingsPlan/SavingsPlanEffectiveCost",
		"savingsPlan/Region", "resourceTags/user:Name", "resourceTags/aws:createdBy", "costCategory/Team"} {
		assert.Contains(t, d.col, h)
	}

	require.Len(t, d.rows, opts.Rows)
	assert.Equal(t, opts.Rows, res.Rows)

	start := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	end := start.AddDate(0, 1, 0)
	types := map[string]int{}
	sums := map[string]decimal.Decimal{}
	counts := map[string]int{}
	var spCovered, spNegated decimal.Decimal
	var scientific, quoted int
	lineItemID := regexp.MustCompile(`^[a-z2-7]{52}$`)
	for _, row := range d.rows {
		require.Len(t, row, len(d.header))
		typ := d.get(row, "lineItem/LineItemType")
		types[typ]++
		acct := d.get(row, "lineItem/UsageAccountId")
		cost := d.dec(t, row, "lineItem/UnblendedCost")
		sums[acct] = sums[acct].Add(cost)
		counts[acct]++

		assert.Regexp(t, lineItemID, d.get(row, "identity/LineItemId"))
		assert.Equal(t, "", d.get(row, "bill/InvoiceId"))
		assert.Equal(t, "Anniversary", d.get(row, "bill/BillType"))
		assert.Equal(t, "AWS", d.get(row, "bill/BillingEntity"))
		assert.Equal(t, "123456789012", d.get(row, "bill/PayerAccountId"))
		assert.Equal(t, "2026-10-01T00:00:00.000Z", d.get(row, "bill/BillingPeriodStartDate"))
		assert.Equal(t, "2026-11-01T00:00:00.000Z", d.get(row, "bill/BillingPeriodEndDate"))
		assert.Equal(t, "USD", d.get(row, "lineItem/CurrencyCode"))
		assert.Equal(t, cost, d.dec(t, row, "lineItem/BlendedCost"))
		assert.Equal(t, cost, d.dec(t, row, "lineItem/NetUnblendedCost"))
		assert.NotEmpty(t, d.get(row, "lineItem/ProductCode"))
		assert.NotEmpty(t, d.get(row, "product/ProductName"))
		assert.NotEmpty(t, d.get(row, "lineItem/LineItemDescription"))

		us, err := time.Parse("2006-01-02T15:04:05.000Z", d.get(row, "lineItem/UsageStartDate"))
		require.NoError(t, err)
		ue, err := time.Parse("2006-01-02T15:04:05.000Z", d.get(row, "lineItem/UsageEndDate"))
		require.NoError(t, err)
		assert.True(t, !us.Before(start) && us.Before(ue) && !ue.After(end), "usage %s..%s", us, ue)
		from, to, ok := strings.Cut(d.get(row, "identity/TimeInterval"), "/")
		require.True(t, ok)
		f, err := time.Parse(time.RFC3339, from)
		require.NoError(t, err)
		tt, err := time.Parse(time.RFC3339, to)
		require.NoError(t, err)
		assert.True(t, !f.Before(start) && f.Before(tt) && !tt.After(end))

		// Every amount is an exact decimal that costlake's parser keeps exactly.
		for i, c := range m.Columns {
			v := row[i]
			switch c.Type {
			case "BigDecimal", "OptionalBigDecimal":
				if v == "" {
					assert.Equal(t, "OptionalBigDecimal", c.Type, "%s is required", c.Header())
					continue
				}
				_, err := money.Parse(v)
				assert.NoError(t, err, "%s = %q", c.Header(), v)
				if strings.Contains(v, "E") {
					scientific++
				}
			}
		}
		if strings.Contains(d.get(row, "lineItem/LineItemDescription"), ",") {
			quoted++
		}

		switch typ {
		case "Usage":
			amount, rate := d.dec(t, row, "lineItem/UsageAmount"), d.dec(t, row, "lineItem/UnblendedRate")
			assert.True(t, amount.Mul(rate).Round(10).Equal(cost), "usage cost %s = %s × %s", cost, amount, rate)
			assert.True(t, cost.Equal(d.dec(t, row, "pricing/publicOnDemandCost")))
			assert.Equal(t, "OnDemand", d.get(row, "pricing/term"))
			assert.NotEmpty(t, d.get(row, "product/sku"))
			assert.NotEmpty(t, d.get(row, "product/region"))
		case "DiscountedUsage":
			assert.True(t, cost.IsZero())
			assert.NotEmpty(t, d.get(row, "reservation/ReservationARN"))
			assert.Equal(t, "Reserved", d.get(row, "pricing/term"))
			eff := d.dec(t, row, "reservation/EffectiveCost")
			assert.True(t, eff.Equal(d.dec(t, row, "reservation/AmortizedUpfrontCostForUsage").Add(d.dec(t, row, "reservation/RecurringFeeForUsage"))))
			assert.True(t, eff.LessThan(d.dec(t, row, "pricing/publicOnDemandCost")), "a reservation is cheaper than on demand")
		case "RIFee":
			assert.NotEmpty(t, d.get(row, "reservation/ReservationARN"))
			assert.NotEmpty(t, d.get(row, "reservation/NumberOfReservations"))
			assert.True(t, d.dec(t, row, "lineItem/UsageAmount").Mul(d.dec(t, row, "lineItem/UnblendedRate")).Equal(cost))
			assert.False(t, d.dec(t, row, "reservation/UnusedRecurringFee").GreaterThan(cost))
		case "SavingsPlanCoveredUsage":
			spCovered = spCovered.Add(cost)
			assert.NotEmpty(t, d.get(row, "savingsPlan/SavingsPlanARN"))
			assert.False(t, d.dec(t, row, "savingsPlan/SavingsPlanEffectiveCost").GreaterThan(cost))
		case "SavingsPlanNegation":
			spNegated = spNegated.Add(cost)
			assert.False(t, cost.IsPositive())
			assert.NotEmpty(t, d.get(row, "savingsPlan/SavingsPlanARN"))
		case "SavingsPlanRecurringFee":
			assert.NotEmpty(t, d.get(row, "savingsPlan/SavingsPlanARN"))
			assert.False(t, d.dec(t, row, "savingsPlan/UsedCommitment").GreaterThan(d.dec(t, row, "savingsPlan/TotalCommitmentToDate")))
		case "Credit", "Refund":
			assert.True(t, cost.IsNegative(), "%s %s", typ, cost)
		case "Tax":
			assert.NotEmpty(t, d.get(row, "lineItem/TaxType"))
			assert.True(t, cost.IsPositive())
		case "Fee":
			assert.True(t, cost.IsPositive())
		}
	}
	t.Logf("line item types: %v", types)

	for _, typ := range LineItemTypes() {
		assert.GreaterOrEqual(t, types[typ], 30, "line item type %s", typ)
	}
	assert.Len(t, types, len(LineItemTypes()), "no other line item types")
	assert.Greater(t, types["Usage"], opts.Rows/2, "usage dominates")
	assert.True(t, spCovered.Add(spNegated).IsZero(), "negations cancel covered usage: %s + %s", spCovered, spNegated)
	assert.Positive(t, scientific, "tiny amounts use AWS's scientific notation")
	assert.Positive(t, quoted, "descriptions with commas survive CSV quoting")

	// Totals reconcile exactly with an independent sum over the CSV.
	require.GreaterOrEqual(t, len(res.Accounts), 3)
	assert.Contains(t, res.Accounts, "123456789012", "the payer is a usage account")
	assert.Len(t, res.Accounts, len(sums))
	total := 0
	for acct, got := range res.Accounts {
		assert.Equal(t, counts[acct], got.Rows, acct)
		want := sums[acct]
		have, err := decimal.NewFromString(got.UnblendedCost)
		require.NoError(t, err)
		assert.True(t, want.Equal(have), "account %s: csv sum %s, result %s", acct, want, got.UnblendedCost)
		assert.Equal(t, want.String(), got.UnblendedCost, "plain decimal without trailing zeros")
		total += got.Rows
	}
	assert.Equal(t, opts.Rows, total)
}

func TestGenerateDefaults(t *testing.T) {
	ctx := context.Background()
	store := blob.NewLocal(t.TempDir())
	res, err := Generate(ctx, store, Options{Period: "2024-02"})
	require.NoError(t, err)
	assert.Regexp(t, `^cur/costlake-demo/20240201-20240301/costlake-demo-Manifest.json$`, res.ManifestKey)
	assert.Regexp(t, `^2024030[1-5]T\d{6}Z$`, res.AssemblyID)
	assert.Equal(t, []string{"cur/costlake-demo/20240201-20240301/" + res.AssemblyID + "/costlake-demo-1.csv.gz"}, res.ReportKeys)
	assert.Equal(t, DefaultRows, res.Rows)
	assert.Len(t, res.Accounts, DefaultLinkedAccounts)
	assert.Contains(t, res.Accounts, DefaultPayer)

	d := readDelivery(t, store, res.ManifestKey)
	assert.Equal(t, DefaultBucket, d.manifest.Bucket)
	assert.Equal(t, DefaultPayer, d.manifest.Account)
	assert.Len(t, d.rows, DefaultRows)
	days := map[string]bool{}
	hourly := 0
	for _, row := range d.rows {
		us := d.get(row, "lineItem/UsageStartDate")
		days[us[:10]] = true
		if d.get(row, "lineItem/LineItemType") == "Usage" {
			from, to, _ := strings.Cut(d.get(row, "identity/TimeInterval"), "/")
			f, _ := time.Parse(time.RFC3339, from)
			tt, _ := time.Parse(time.RFC3339, to)
			if tt.Sub(f) == time.Hour {
				hourly++
			}
		}
	}
	assert.Len(t, days, 29, "usage is spread over every day of February 2024")
	assert.Positive(t, hourly)

	// An explicit assembly ID and a single row.
	res, err = Generate(ctx, store, Options{Period: "2024-02", Rows: 1, AssemblyID: "6d5e9a0c-uuid-style"})
	require.NoError(t, err)
	assert.Equal(t, "6d5e9a0c-uuid-style", res.AssemblyID)
	d = readDelivery(t, store, res.ManifestKey)
	assert.Len(t, d.rows, 1)
}

func TestGenerateDeterministic(t *testing.T) {
	ctx := context.Background()
	opts := Options{Period: "2025-07", Rows: 5000, Files: 4, Seed: 7, LinkedAccounts: 6}
	dirA, dirB := blob.NewLocal(t.TempDir()), blob.NewLocal(t.TempDir())
	resA, err := Generate(ctx, dirA, opts)
	require.NoError(t, err)
	resB, err := Generate(ctx, dirB, opts)
	require.NoError(t, err)
	assert.Equal(t, resA, resB)
	for _, key := range append([]string{resA.ManifestKey, resA.AssemblyManifestKey}, resA.ReportKeys...) {
		assert.True(t, bytes.Equal(readObject(t, dirA, key), readObject(t, dirB, key)), "%s differs between runs", key)
	}

	opts.Seed = 8
	dirC := blob.NewLocal(t.TempDir())
	resC, err := Generate(ctx, dirC, opts)
	require.NoError(t, err)
	assert.NotEqual(t, resA.AssemblyID, resC.AssemblyID)
	opts.AssemblyID = resA.AssemblyID
	resC, err = Generate(ctx, dirC, opts)
	require.NoError(t, err)
	assert.False(t, bytes.Equal(readObject(t, dirA, resA.ReportKeys[0]), readObject(t, dirC, resC.ReportKeys[0])),
		"another seed gives other rows")
}

func TestGenerateInvalidOptions(t *testing.T) {
	cases := map[string]Options{
		"no period":          {},
		"bad month":          {Period: "2026-13"},
		"bad separator":      {Period: "2026/10"},
		"day":                {Period: "2026-10-01"},
		"negative rows":      {Period: "2026-10", Rows: -1},
		"negative files":     {Period: "2026-10", Files: -2},
		"more files":         {Period: "2026-10", Rows: 3, Files: 4},
		"short payer":        {Period: "2026-10", Payer: "12345"},
		"letters payer":      {Period: "2026-10", Payer: "12345678901a"},
		"negative accounts":  {Period: "2026-10", LinkedAccounts: -1},
		"too many accounts":  {Period: "2026-10", LinkedAccounts: MaxLinkedAccounts + 1},
		"slash in report":    {Period: "2026-10", Report: "a/b"},
		"space in report":    {Period: "2026-10", Report: "my report"},
		"slash in assembly":  {Period: "2026-10", AssemblyID: "a/b"},
		"dot-dot assembly":   {Period: "2026-10", AssemblyID: ".."},
		"empty prefix level": {Period: "2026-10", Prefix: "a//b"},
	}
	for name, o := range cases {
		t.Run(name, func(t *testing.T) {
			store := blob.NewLocal(t.TempDir())
			_, err := Generate(context.Background(), store, o)
			require.ErrorIs(t, err, ErrInvalidOptions)
			t.Log(err)
			infos, err := store.List(context.Background(), "")
			require.NoError(t, err)
			assert.Empty(t, infos, "nothing is written for invalid options")
		})
	}
}

// failingStore accepts limit bytes per object, then fails, or (limit < 0)
// returns success without reading.
type failingStore struct {
	blob.Store
	limit int64
}

var errDiskFull = errors.New("disk full")

func (s failingStore) Put(ctx context.Context, key string, r io.Reader) error {
	if s.limit < 0 {
		return nil
	}
	if _, err := io.CopyN(io.Discard, r, s.limit); err != nil {
		return err
	}
	return errDiskFull
}

func TestGenerateStoreErrors(t *testing.T) {
	ctx := context.Background()
	opts := Options{Period: "2026-10", Rows: 20000, Files: 2}
	_, err := Generate(ctx, failingStore{Store: blob.NewLocal(t.TempDir()), limit: 1000}, opts)
	require.ErrorIs(t, err, errDiskFull)

	_, err = Generate(ctx, failingStore{Store: blob.NewLocal(t.TempDir()), limit: -1}, opts)
	require.ErrorIs(t, err, errStoreStopped)

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	store := blob.NewLocal(t.TempDir())
	_, err = Generate(cctx, store, opts)
	require.ErrorIs(t, err, context.Canceled)
	infos, err := store.List(ctx, "")
	require.NoError(t, err)
	for _, in := range infos {
		assert.NotContains(t, in.Key, "Manifest", "no manifest after a failure")
	}
}

func TestAppendDec(t *testing.T) {
	cases := []struct {
		v    int64
		want string
	}{
		{0, "0.0"},
		{one, "1.0"},
		{-one, "-1.0"},
		{125 * one / 10, "12.5"},
		{416_000_000, "0.0416"},
		{10_569_617, "0.0010569617"},
		{10_000_000, "0.001"},
		{500_000, "5.0E-5"},
		{181, "1.81E-8"},
		{1, "1.0E-10"},
		{-9_408 * 100_000, "-0.09408"},
		{9_999_999 * one, "9999999.0"},
		{10_000_000 * one, "1.0E7"},
		{123_456_789 * one / 10, "1.23456789E7"},
		{744 * one, "744.0"},
	}
	for _, c := range cases {
		got := string(appendDec(nil, c.v))
		assert.Equal(t, c.want, got, "appendDec(%d)", c.v)
		d, err := decimal.NewFromString(got)
		require.NoError(t, err)
		assert.True(t, d.Equal(decimal.New(c.v, -scale)), "%s round-trips", got)
	}
}

func TestFormatTotal(t *testing.T) {
	for v, want := range map[int64]string{0: "0", one: "1", -15 * one / 10: "-1.5", 1: "0.0000000001", 123_456_000_000: "12.3456"} {
		assert.Equal(t, want, formatTotal(big.NewInt(v)))
	}
	huge := new(big.Int).Mul(big.NewInt(1<<62), big.NewInt(1000))
	assert.Equal(t, decimal.NewFromBigInt(huge, -scale).String(), formatTotal(huge))
}

func TestMulDiv(t *testing.T) {
	assert.Equal(t, int64(960_000_000), mulDiv(one, 960_000_000))
	assert.Equal(t, int64(1), mulDiv(5_000_000_000, 1), "half rounds up")
	assert.Equal(t, int64(0), mulDiv(4_999_999_999, 1))
	assert.Equal(t, int64(100_000_000*one), mulDiv(100_000*one, 1000*one), "128-bit intermediate")
}

// discardStore reads and drops every object: a benchmark of generation and
// compression alone.
type discardStore struct{ blob.Store }

func (discardStore) Put(_ context.Context, _ string, r io.Reader) error {
	_, err := io.Copy(io.Discard, r)
	return err
}

func BenchmarkGenerate(b *testing.B) {
	const rows = 100_000
	for _, files := range []int{1, 4} {
		b.Run("local/files="+string(rune('0'+files)), func(b *testing.B) {
			store := blob.NewLocal(b.TempDir())
			var size int64
			for b.Loop() {
				res, err := Generate(context.Background(), store, Options{Period: "2026-10", Rows: rows, Files: files, Seed: 1})
				if err != nil {
					b.Fatal(err)
				}
				size = 0
				for _, k := range res.ReportKeys {
					in, err := store.Stat(context.Background(), k)
					if err != nil {
						b.Fatal(err)
					}
					size += in.Size
				}
			}
			b.ReportMetric(float64(rows*b.N)/b.Elapsed().Seconds(), "rows/s")
			b.ReportMetric(float64(size)/(1<<20), "MiB-gz")
		})
	}
	b.Run("discard/files=1", func(b *testing.B) {
		store := discardStore{blob.NewLocal(b.TempDir())}
		for b.Loop() {
			if _, err := Generate(context.Background(), store, Options{Period: "2026-10", Rows: rows, Seed: 1}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(rows*b.N)/b.Elapsed().Seconds(), "rows/s")
	})
}
