package lakehouse

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/catalog"
	icebergio "github.com/apache/iceberg-go/io"
	"github.com/apache/iceberg-go/table"

	"github.com/costlake/costlake/internal/billing"
	"github.com/costlake/costlake/internal/money"
	"github.com/costlake/costlake/internal/rebilling"
)

// ResaleTable is billing.resale_line_items: every line item of a closed
// billing cycle with what the customer is charged for it. Partitioned by
// customer and billing period (identity); a cycle's rows are replaced
// together in one snapshot, whose summary records the cycle's pins
// (PropCyclePins), so re-pricing the same closed cycle changes nothing.
const ResaleTable = "resale_line_items"

// Columns of billing.resale_line_items. Those copied from
// billing.line_items keep their CUR 2.0 names, for joins.
const (
	ColResaleCustomer    = "customer_id"
	ColResalePeriod      = billing.ColBillingPeriod
	ColResalePayer       = billing.ColPayerAccountID
	ColResaleAccount     = billing.ColUsageAccountID
	ColResaleLineItemID  = billing.ColLineItemID
	ColResaleType        = billing.ColLineItemType
	ColResaleProductCode = billing.ColProductCode
	ColResaleServiceCode = billing.ColServiceCode
	ColResaleUsageType   = billing.ColUsageType
	ColResaleCost        = "unblended_cost"
	ColResaleResale      = "resale_cost"
	ColResaleRule        = "rule"
	ColResaleVersion     = "pricebook_version"
	ColResaleSnapshot    = "source_snapshot_id"
)

// Snapshot summary properties of a resale commit, besides PropPeriod and
// PropRows.
const (
	PropCustomer  = "costlake.customer"
	PropCyclePins = "costlake.cycle-pins" // pricebook version and line_items snapshot per payer
)

// ResaleSchema is the Iceberg schema of billing.resale_line_items.
func ResaleSchema() *iceberg.Schema {
	dec := iceberg.DecimalTypeOf(money.Precision, money.Scale)
	str := iceberg.PrimitiveTypes.String
	return iceberg.NewSchema(0,
		iceberg.NestedField{ID: 1, Name: ColResaleCustomer, Type: str, Required: true, Doc: "the reseller's customer"},
		iceberg.NestedField{ID: 2, Name: ColResalePeriod, Type: str, Required: true, Doc: "billing period, YYYY-MM"},
		iceberg.NestedField{ID: 3, Name: ColResalePayer, Type: str, Required: true, Doc: "the payer (management) account"},
		iceberg.NestedField{ID: 4, Name: ColResaleAccount, Type: str, Doc: "the usage account"},
		iceberg.NestedField{ID: 5, Name: ColResaleLineItemID, Type: str, Doc: "identity_line_item_id of the line item"},
		iceberg.NestedField{ID: 6, Name: ColResaleType, Type: str, Doc: "Usage, Tax, Credit, …"},
		iceberg.NestedField{ID: 7, Name: ColResaleProductCode, Type: str},
		iceberg.NestedField{ID: 8, Name: ColResaleServiceCode, Type: str},
		iceberg.NestedField{ID: 9, Name: ColResaleUsageType, Type: str},
		iceberg.NestedField{ID: 10, Name: ColResaleCost, Type: dec, Required: true, Doc: "line_item_unblended_cost: what AWS charged"},
		iceberg.NestedField{ID: 11, Name: ColResaleResale, Type: dec, Required: true, Doc: "what the customer is charged, exact (scale 18)"},
		iceberg.NestedField{ID: 12, Name: ColResaleRule, Type: str, Required: true, Doc: "what priced it: rules[N], global_percent or at_cost"},
		iceberg.NestedField{ID: 13, Name: ColResaleVersion, Type: iceberg.PrimitiveTypes.Int32, Required: true, Doc: "the customer's pricebook version the cycle pinned"},
		iceberg.NestedField{ID: 14, Name: ColResaleSnapshot, Type: iceberg.PrimitiveTypes.Int64, Required: true, Doc: "the billing.line_items snapshot the cycle pinned"},
	)
}

// ResaleTableID is the identifier of billing.resale_line_items.
func ResaleTableID() table.Identifier { return table.Identifier{Namespace, ResaleTable} }

// ResaleLineItems loads billing.resale_line_items, creating it on first use.
func (l *Lake) ResaleLineItems(ctx context.Context) (*table.Table, error) {
	id := ResaleTableID()
	tbl, err := l.cat.LoadTable(ctx, id)
	if err == nil || !errors.Is(err, catalog.ErrNoSuchTable) {
		return tbl, err
	}
	schema := ResaleSchema()
	spec, err := iceberg.NewPartitionSpecOpts(
		iceberg.AddPartitionFieldByName(ColResaleCustomer, ColResaleCustomer, iceberg.IdentityTransform{}, schema, nil),
		iceberg.AddPartitionFieldByName(ColResalePeriod, ColResalePeriod, iceberg.IdentityTransform{}, schema, nil),
	)
	if err != nil {
		return nil, fmt.Errorf("partition spec of %s: %w", id, err)
	}
	_, err = l.cat.CreateTable(ctx, id, schema, catalog.WithPartitionSpec(&spec), catalog.WithProperties(iceberg.Properties{
		"format-version":                  "2",
		"write.parquet.compression-codec": "zstd",
		table.ManifestMergeEnabledKey:     "true", // appends merge small manifests: scans open few
		"comment":                         "closed billing cycles' line items with their resale price; one partition per customer and billing period",
	}))
	if err != nil && !errors.Is(err, catalog.ErrTableAlreadyExists) {
		return nil, fmt.Errorf("create table %s: %w", id, err)
	}
	return l.cat.LoadTable(ctx, id)
}

// ResaleRow is one row of billing.resale_line_items: the rebilling pass's
// row, stored as it prices it.
type ResaleRow = rebilling.ResaleRow

// resaleFileRows bounds the rows of one data file.
const resaleFileRows = 4_000_000

// ResaleWriter streams one cycle's rows into Parquet data files in the
// table's layout (customer_id=…/billing_period=…/<name>-NNNNN.parquet),
// rolling to a new file every few million rows, so memory stays bounded.
// The same name gives the same paths: a retried attempt overwrites its
// own files. Commit them with ReplaceResale.
type ResaleWriter struct {
	ctx      context.Context
	wfs      icebergio.WriteFileIO
	schema   *arrow.Schema
	dir      string
	name     string
	customer string
	period   string

	out    icebergio.FileWriter
	pw     *pqarrow.FileWriter
	rb     *array.RecordBuilder
	cols   resaleBuilders
	files  []string
	inFile int64
	batch  int
	rows   int64
}

type resaleBuilders struct {
	str     []*array.StringBuilder // columns 1-9 and 12, in resaleStringColumns order
	cost    *array.Decimal128Builder
	resale  *array.Decimal128Builder
	version *array.Int32Builder
	snap    *array.Int64Builder
}

var resaleStringColumns = []string{ColResaleCustomer, ColResalePeriod, ColResalePayer, ColResaleAccount, ColResaleLineItemID,
	ColResaleType, ColResaleProductCode, ColResaleServiceCode, ColResaleUsageType, ColResaleRule}

// NewResaleWriter starts the data files of customer's period.
func (l *Lake) NewResaleWriter(ctx context.Context, customer, period, name string) (*ResaleWriter, error) {
	tbl, err := l.ResaleLineItems(ctx)
	if err != nil {
		return nil, err
	}
	schema, err := table.SchemaToArrowSchema(tbl.Schema(), nil, true, false)
	if err != nil {
		return nil, fmt.Errorf("arrow schema: %w", err)
	}
	fsys, err := tbl.FS(ctx)
	if err != nil {
		return nil, err
	}
	wfs, ok := fsys.(icebergio.WriteFileIO)
	if !ok {
		return nil, fmt.Errorf("warehouse of %s is read-only", ResaleTableID())
	}
	dir := fmt.Sprintf("%s/data/%s=%s/%s=%s", strings.TrimRight(tbl.Location(), "/"),
		ColResaleCustomer, url.PathEscape(customer), ColResalePeriod, url.PathEscape(period))
	return &ResaleWriter{ctx: ctx, wfs: wfs, schema: schema, dir: dir, name: name, customer: customer, period: period}, nil
}

func (w *ResaleWriter) open() error {
	path := fmt.Sprintf("%s/%s-%05d.parquet", w.dir, w.name, len(w.files)+1)
	out, err := w.wfs.Create(path)
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	props := parquet.NewWriterProperties(
		parquet.WithCompression(compress.Codecs.Zstd),
		parquet.WithCompressionLevel(1),
		parquet.WithMaxRowGroupLength(128*1024),
	)
	pw, err := pqarrow.NewFileWriter(w.schema, out, props, pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	if err != nil {
		out.Close()
		return fmt.Errorf("parquet writer %s: %w", path, err)
	}
	w.out, w.pw, w.inFile = out, pw, 0
	w.rb = array.NewRecordBuilder(memory.DefaultAllocator, w.schema)
	field := func(name string) array.Builder { return w.rb.Field(w.schema.FieldIndices(name)[0]) }
	w.cols = resaleBuilders{
		cost:    field(ColResaleCost).(*array.Decimal128Builder),
		resale:  field(ColResaleResale).(*array.Decimal128Builder),
		version: field(ColResaleVersion).(*array.Int32Builder),
		snap:    field(ColResaleSnapshot).(*array.Int64Builder),
	}
	for _, c := range resaleStringColumns {
		w.cols.str = append(w.cols.str, field(c).(*array.StringBuilder))
	}
	w.files = append(w.files, path)
	return nil
}

// Append adds one row; it must belong to the writer's customer and period.
func (w *ResaleWriter) Append(r *ResaleRow) error {
	if r.CustomerID != w.customer || r.Period != w.period {
		return fmt.Errorf("resale row of %s %s written to %s %s", r.CustomerID, r.Period, w.customer, w.period)
	}
	if w.pw == nil {
		if err := w.open(); err != nil {
			return err
		}
	}
	for i, v := range []string{r.CustomerID, r.Period, r.PayerAccountID, r.UsageAccountID, r.LineItemID,
		r.LineItemType, r.ProductCode, r.ServiceCode, r.UsageType, r.Rule} {
		if v == "" && i >= 3 && i != 9 {
			w.cols.str[i].AppendNull()
		} else {
			w.cols.str[i].Append(v)
		}
	}
	w.cols.cost.Append(r.UnblendedCost.Num())
	w.cols.resale.Append(r.ResaleCost.Num())
	w.cols.version.Append(int32(r.PricebookVersion))
	w.cols.snap.Append(r.SourceSnapshotID)
	w.rows++
	w.inFile++
	w.batch++
	if w.batch >= batchRows {
		if err := w.flush(); err != nil {
			return err
		}
	}
	if w.inFile >= resaleFileRows {
		return w.closeFile()
	}
	return nil
}

func (w *ResaleWriter) flush() error {
	if w.batch == 0 {
		return nil
	}
	rec := w.rb.NewRecordBatch()
	defer rec.Release()
	w.batch = 0
	if err := w.pw.WriteBuffered(rec); err != nil {
		return fmt.Errorf("write %s: %w", w.files[len(w.files)-1], err)
	}
	return nil
}

func (w *ResaleWriter) closeFile() error {
	if w.pw == nil {
		return nil
	}
	err := w.flush()
	w.rb.Release()
	if cerr := w.pw.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close %s: %w", w.files[len(w.files)-1], cerr)
	}
	w.pw, w.out, w.rb = nil, nil, nil
	return err
}

// Rows returns how many rows were appended.
func (w *ResaleWriter) Rows() int64 { return w.rows }

// Checkpoint finishes the current file and returns every file written so
// far and their rows: a retried attempt hands them to Resume and goes on
// after them.
func (w *ResaleWriter) Checkpoint() ([]string, int64, error) {
	if err := w.closeFile(); err != nil {
		return nil, 0, err
	}
	return slices.Clone(w.files), w.rows, nil
}

// Resume continues a writer after an earlier attempt's Checkpoint: its
// files are kept and new ones are numbered after them.
func (w *ResaleWriter) Resume(files []string, rows int64) {
	w.files, w.rows = slices.Clone(files), rows
}

// Close finishes the last file and returns every file written (none when
// no row was appended).
func (w *ResaleWriter) Close() ([]string, error) {
	if err := w.closeFile(); err != nil {
		return nil, err
	}
	return w.files, nil
}

// Abort closes without caring about errors; the files stay for the next
// attempt to overwrite.
func (w *ResaleWriter) Abort() {
	if w.pw != nil {
		w.rb.Release()
		_ = w.pw.Close()
		w.pw = nil
	}
}

// ResaleCommit describes the snapshot that last replaced a cycle's rows.
type ResaleCommit struct {
	SnapshotID int64
	Pins       string
	Rows       int64
}

// LatestResaleCommit reads the newest commit of customer's period from
// its record (costlake_commits).
func (l *Lake) LatestResaleCommit(ctx context.Context, customer, period string) (ResaleCommit, bool, error) {
	r, ok, err := l.latestCommit(ctx, ResaleTable, customer, period)
	if !ok || err != nil {
		return ResaleCommit{}, false, err
	}
	rows, _ := strconv.ParseInt(r.Props[PropRows], 10, 64)
	return ResaleCommit{SnapshotID: r.SnapshotID, Pins: r.Props[PropCyclePins], Rows: rows}, true, nil
}

func resaleFilter(customer, period string) iceberg.BooleanExpression {
	return iceberg.NewAnd(
		iceberg.EqualTo(iceberg.Reference(ColResaleCustomer), customer),
		iceberg.EqualTo(iceberg.Reference(ColResalePeriod), period),
	)
}

// ReplaceResale makes files the whole of customer's period in
// billing.resale_line_items, in one snapshot whose summary records pins.
// When the period's latest commit already carries the same pins (the same
// closed cycle priced again), nothing changes and unchanged is true. A
// commit that loses a race with another customer's is redone on the newer
// snapshot. With no files and no earlier rows nothing is committed
// (snapshot 0).
func (l *Lake) ReplaceResale(ctx context.Context, customer, period, pins string, files []string, rows int64) (snapshotID int64, unchanged bool, err error) {
	props := iceberg.Properties{
		PropCustomer:  customer,
		PropPeriod:    period,
		PropCyclePins: pins,
		PropRows:      strconv.FormatInt(rows, 10),
	}
	type outcome struct {
		snapshotID int64
		unchanged  bool
	}
	o, err := retryLostRace(ctx, func() (outcome, error) {
		tbl, err := l.ResaleLineItems(ctx)
		if err != nil {
			return outcome{}, err
		}
		prev, ok, err := l.LatestResaleCommit(ctx, customer, period)
		if err != nil {
			return outcome{}, err
		}
		if ok && prev.Pins == pins {
			return outcome{prev.SnapshotID, true}, nil
		}
		var existing []string
		if tbl.CurrentSnapshot() != nil {
			tasks, err := tbl.Scan(table.WithRowFilter(resaleFilter(customer, period))).PlanFiles(ctx)
			if err != nil {
				return outcome{}, fmt.Errorf("plan resale files of %s %s: %w", customer, period, err)
			}
			for _, t := range tasks {
				existing = append(existing, t.File.FilePath())
			}
		}
		if len(existing) == 0 && len(files) == 0 {
			return outcome{}, nil
		}
		tx := tbl.NewTransaction()
		if len(existing) == 0 {
			// No duplicate check (it reads every manifest): the cycle's
			// partition holds no files, and these are new.
			err = tx.AddFiles(ctx, files, props, true)
		} else {
			err = tx.ReplaceDataFiles(ctx, existing, files, props)
		}
		if err != nil {
			return outcome{}, fmt.Errorf("stage resale rows of %s %s: %w", customer, period, err)
		}
		committed, err := l.commit(ctx, tx, tbl)
		if err != nil {
			return outcome{}, fmt.Errorf("commit resale rows of %s %s: %w", customer, period, err)
		}
		return outcome{snapshotID: committed.CurrentSnapshot().SnapshotID}, nil
	})
	if err == nil {
		// Unchanged too: the retry of a commit whose copy did not happen.
		err = l.mirrorCustomer(ctx, ResaleTableID(), customer, period)
	}
	return o.snapshotID, o.unchanged, err
}

// ScanResale streams customer's rows of period from a snapshot of
// billing.resale_line_items (0 for the current one). The row is reused.
func (l *Lake) ScanResale(ctx context.Context, customer, period string, snapshotID int64, fn func(*ResaleRow) error) error {
	tbl, err := l.ResaleLineItems(ctx)
	if err != nil {
		return err
	}
	if tbl.CurrentSnapshot() == nil {
		return nil
	}
	opts := []table.ScanOption{table.WithRowFilter(resaleFilter(customer, period))}
	if snapshotID != 0 {
		if tbl.SnapshotByID(snapshotID) == nil {
			return fmt.Errorf("%w: %s has no snapshot %d", ErrSnapshotNotFound, ResaleTableID(), snapshotID)
		}
		opts = append(opts, table.WithSnapshotID(snapshotID))
	}
	_, batches, err := tbl.Scan(opts...).ToArrowRecords(ctx)
	if err != nil {
		return fmt.Errorf("scan resale rows of %s %s: %w", customer, period, err)
	}
	var r ResaleRow
	for batch, err := range batches {
		if err != nil {
			return fmt.Errorf("scan resale rows of %s %s: %w", customer, period, err)
		}
		err := eachResaleRow(batch, &r, fn)
		batch.Release()
		if err != nil {
			return err
		}
	}
	return nil
}

func eachResaleRow(batch arrow.RecordBatch, r *ResaleRow, fn func(*ResaleRow) error) error {
	sc := batch.Schema()
	col := func(name string) arrow.Array { return batch.Column(sc.FieldIndices(name)[0]) }
	strs := make([]stringValues, len(resaleStringColumns))
	for i, c := range resaleStringColumns {
		s, ok := col(c).(stringValues)
		if !ok {
			return fmt.Errorf("%s: column %s is %s", ResaleTableID(), c, col(c).DataType())
		}
		strs[i] = s
	}
	cost, ok1 := col(ColResaleCost).(*array.Decimal128)
	resale, ok2 := col(ColResaleResale).(*array.Decimal128)
	version, ok3 := col(ColResaleVersion).(*array.Int32)
	snap, ok4 := col(ColResaleSnapshot).(*array.Int64)
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return fmt.Errorf("%s: unexpected column types", ResaleTableID())
	}
	str := func(i, row int) string {
		if strs[i].IsValid(row) {
			return strs[i].Value(row)
		}
		return ""
	}
	for i := 0; i < int(batch.NumRows()); i++ {
		*r = ResaleRow{
			CustomerID: str(0, i), Period: str(1, i), PayerAccountID: str(2, i), UsageAccountID: str(3, i),
			LineItemID: str(4, i), LineItemType: str(5, i), ProductCode: str(6, i), ServiceCode: str(7, i),
			UsageType: str(8, i), Rule: str(9, i),
			UnblendedCost: money.FromNum(cost.Value(i)), ResaleCost: money.FromNum(resale.Value(i)),
			PricebookVersion: int(version.Value(i)), SourceSnapshotID: snap.Value(i),
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}
