package lakehouse

import (
	"encoding/binary"
	"fmt"
	"unsafe"

	"github.com/apache/iceberg-go"
	"github.com/parquet-go/parquet-go"

	"github.com/costlake/costlake/internal/billing"
	"github.com/costlake/costlake/internal/money"
)

// batchRows is how many records a pqFile collects per column before handing
// them to parquet-go's column writers: few enough that a batch's values stay
// in the CPU caches.
const batchRows = 256

// pqFile writes records with parquet-go, column by column: each batch of a
// column's values goes to its column writer at once. Strings are passed
// without copying; the column buffers copy them into their dictionaries.
//
// arrow-go's pqarrow, which this replaces, copied every value into Arrow
// builders first and boxed each one in an interface in its dictionary
// encoder: converting a chunk took a third more CPU time.
type pqFile struct {
	w       *parquet.GenericWriter[any]
	cols    []pqColumn
	decs    []byte // the batch's decimals, 16 bytes big-endian each
	inBatch int
	inGroup int
	gen     int // batches flushed
}

type pqColumn struct {
	col  billing.Column
	leaf int // leaf column index; a map's keys, its values are leaf+1
	// The batch's values, with their levels: keys for map columns, whose
	// values go in vals2.
	vals, vals2 []parquet.Value
	null, null2 parquet.Value
	// The last decimal or timestamp typed, and its value, valid in batch
	// lastGen: billing files repeat them row after row (usage hours,
	// rates), and a comparison is cheaper than parsing.
	last    string
	lastVal parquet.Value
	lastGen int
}

// pageChunks holds every writer's compressed pages until their row group is
// written.
var pageChunks = parquet.NewChunkBufferPool(pageChunkBytes)

// orderedGroup is a Parquet group whose fields keep the table's order
// (parquet.Group sorts them by name).
type orderedGroup struct {
	parquet.Group
	fields []parquet.Field
}

func (g *orderedGroup) Fields() []parquet.Field { return g.fields }

func newOrderedGroup(names []string, nodes []parquet.Node) *orderedGroup {
	g := parquet.Group{}
	for i, n := range names {
		g[n] = nodes[i]
	}
	byName := map[string]parquet.Field{}
	for _, f := range g.Fields() {
		byName[f.Name()] = f
	}
	og := &orderedGroup{Group: g}
	for _, n := range names {
		og.fields = append(og.fields, byName[n])
	}
	return og
}

// pqNode is the Parquet node of an Iceberg field, as Iceberg's spec maps
// types, with its field ID; every column is dictionary-encoded.
func pqNode(f iceberg.NestedField) (parquet.Node, error) {
	dict := func(n parquet.Node) parquet.Node { return parquet.Encoded(n, &parquet.RLEDictionary) }
	var n parquet.Node
	switch t := f.Type.(type) {
	case iceberg.StringType:
		n = dict(parquet.String())
	case iceberg.DecimalType:
		if t.Precision() != money.Precision || t.Scale() != money.Scale {
			return nil, fmt.Errorf("column %s: %s is not decimal(%d,%d)", f.Name, t, money.Precision, money.Scale)
		}
		n = dict(parquet.Decimal(t.Scale(), t.Precision(), parquet.FixedLenByteArrayType(16)))
	case iceberg.TimestampTzType:
		n = dict(parquet.TimestampAdjusted(parquet.Microsecond, true))
	case *iceberg.MapType:
		_, kStr := t.KeyType.(iceberg.StringType)
		_, vStr := t.ValueType.(iceberg.StringType)
		if !kStr || !vStr {
			return nil, fmt.Errorf("column %s: no parquet type for %s", f.Name, f.Type)
		}
		val := parquet.FieldID(dict(parquet.String()), t.ValueID)
		if !t.ValueRequired {
			val = parquet.Optional(val)
		}
		n = parquet.Map(parquet.FieldID(dict(parquet.String()), t.KeyID), val)
	default:
		return nil, fmt.Errorf("column %s: no parquet type for %s", f.Name, f.Type)
	}
	if !f.Required {
		n = parquet.Optional(n)
	}
	return parquet.FieldID(n, f.ID), nil
}

func newPQFile(out interface{ Write([]byte) (int, error) }, schema *iceberg.Schema, bs *billing.Schema) (*pqFile, error) {
	// The file holds the table's columns that costlake knows: a column a
	// newer costlake added to the table is simply absent, which Iceberg
	// reads as null.
	var fields []iceberg.NestedField
	for _, f := range schema.Fields() {
		if bs.Index(f.Name) >= 0 {
			fields = append(fields, f)
		}
	}
	names := make([]string, len(fields))
	nodes := make([]parquet.Node, len(fields))
	leafOf := make(map[string]int, len(fields))
	leaf := 0
	for i, f := range fields {
		n, err := pqNode(f)
		if err != nil {
			return nil, err
		}
		if f.Required {
			return nil, fmt.Errorf("column %s: required columns are not supported", f.Name)
		}
		names[i], nodes[i] = f.Name, n
		leafOf[f.Name] = leaf
		if _, ok := f.Type.(*iceberg.MapType); ok {
			leaf += 2
		} else {
			leaf++
		}
	}
	ps := parquet.NewSchema("table", newOrderedGroup(names, nodes))
	opts := []parquet.WriterOption{
		ps,
		parquet.Compression(pageCodec),
		parquet.DataPageVersion(1),
		parquet.PageBufferSize(pageBytes),
		parquet.ColumnPageBuffers(pageChunks),
		// Min/max go in the column chunks and the page index, not in every
		// page header. parquet-go always writes a page index, and for a
		// column left without bounds (SkipPageBounds) it claims min = max
		// = "" for pages that hold values: readers that filter pages by
		// the index (Trino, parquet-mr) would skip pages they need. So
		// every column gets bounds, for 6% more CPU time; Iceberg keeps
		// them, truncated, in the manifests.
		parquet.DataPageStatistics(false),
		parquet.CreatedBy("costlake", "", ""),
	}
	p := &pqFile{w: parquet.NewGenericWriter[any](out, opts...), cols: make([]pqColumn, len(bs.Columns))}
	decimals := 0
	for i, c := range bs.Columns {
		l, ok := leafOf[c.Name]
		if !ok {
			return nil, fmt.Errorf("table %s has no column %s", TableID(bs), c.Name)
		}
		want := map[billing.Kind]string{billing.String: "string", billing.Decimal: "decimal", billing.Timestamp: "timestamptz", billing.Map: "map"}[c.Kind]
		if got := schemaTypeName(fields, c.Name); got != want {
			return nil, fmt.Errorf("column %s is %s in the table, %s in costlake", c.Name, got, want)
		}
		p.cols[i] = pqColumn{col: c, leaf: l, vals: make([]parquet.Value, 0, batchRows),
			null: parquet.NullValue().Level(0, 0, l)}
		switch c.Kind {
		case billing.Decimal:
			decimals++
		case billing.Map:
			p.cols[i].vals2 = make([]parquet.Value, 0, batchRows)
			p.cols[i].null2 = parquet.NullValue().Level(0, 0, l+1)
		}
	}
	// Room for every decimal of a batch: values point into it until flushed.
	p.decs = make([]byte, 0, decimals*batchRows*16)
	return p, nil
}

func schemaTypeName(fields []iceberg.NestedField, name string) string {
	for _, f := range fields {
		if f.Name == name {
			switch f.Type.(type) {
			case iceberg.StringType:
				return "string"
			case iceberg.DecimalType:
				return "decimal"
			case iceberg.TimestampTzType:
				return "timestamptz"
			case *iceberg.MapType:
				return "map"
			}
			return f.Type.String()
		}
	}
	return ""
}

// bytesOf views s as bytes without copying; parquet-go only reads them.
func bytesOf(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// level appends v to vals with its levels, set in place: Value.Level, or
// setting the fields of a copy, stalls on a 24-byte struct going through
// the stack (they took 8% of a conversion's CPU time).
func level(vals []parquet.Value, v parquet.Value, rep, def, col int) []parquet.Value {
	vals = append(vals, v)
	p := &vals[len(vals)-1]
	p.SetRepetitionLevel(rep)
	p.SetDefinitionLevel(def)
	p.SetColumnIndex(col)
	return vals
}

func (p *pqFile) append(r *billing.Record) error {
	for i := range p.cols {
		c := &p.cols[i]
		switch c.col.Kind {
		case billing.String:
			if v := r.Values[i]; v == "" {
				c.vals = append(c.vals, c.null)
			} else {
				c.vals = level(c.vals, parquet.ByteArrayValue(bytesOf(v)), 0, 1, c.leaf)
			}
		case billing.Decimal:
			v := r.Values[i]
			if v == "" {
				c.vals = append(c.vals, c.null)
				continue
			}
			if v == c.last && c.lastGen == p.gen {
				c.vals = append(c.vals, c.lastVal)
				continue
			}
			a, err := money.Parse(v)
			if err != nil {
				return &ValueError{Column: c.col.Name, Value: v, Err: err}
			}
			n := a.Num()
			off := len(p.decs)
			p.decs = binary.BigEndian.AppendUint64(p.decs, uint64(n.HighBits()))
			p.decs = binary.BigEndian.AppendUint64(p.decs, n.LowBits())
			c.vals = level(c.vals, parquet.FixedLenByteArrayValue(p.decs[off:off+16:off+16]), 0, 1, c.leaf)
			c.last, c.lastVal, c.lastGen = v, c.vals[len(c.vals)-1], p.gen
		case billing.Timestamp:
			v := r.Values[i]
			if v == "" {
				c.vals = append(c.vals, c.null)
				continue
			}
			if v != c.last {
				t, err := ParseTimestamp(v)
				if err != nil {
					return &ValueError{Column: c.col.Name, Value: v, Err: err}
				}
				c.last, c.lastVal = v, parquet.Int64Value(t.UnixMicro()).Level(0, 1, c.leaf)
			}
			c.vals = append(c.vals, c.lastVal) // holds no pointer: valid in any batch
		case billing.Map:
			entries := r.Entries[i]
			if len(entries) == 0 {
				c.vals = append(c.vals, c.null)
				c.vals2 = append(c.vals2, c.null2)
				continue
			}
			for j, e := range entries {
				rep := min(j, 1) // 0 starts the row, 1 continues its map
				c.vals = level(c.vals, parquet.ByteArrayValue(bytesOf(e.Key)), rep, 2, c.leaf)
				c.vals2 = level(c.vals2, parquet.ByteArrayValue(bytesOf(e.Value)), rep, 3, c.leaf+1)
			}
		}
	}
	p.inBatch++
	if p.inBatch >= batchRows {
		return p.flushBatch()
	}
	return nil
}

// flushBatch hands the batch to the column writers (which copy the values)
// and ends the row group when it is full.
func (p *pqFile) flushBatch() error {
	if p.inBatch == 0 {
		return nil
	}
	cws := p.w.ColumnWriters()
	for i := range p.cols {
		c := &p.cols[i]
		if _, err := cws[c.leaf].WriteRowValues(c.vals); err != nil {
			return err
		}
		clear(c.vals) // let the batch's strings go
		c.vals = c.vals[:0]
		if c.col.Kind == billing.Map {
			if _, err := cws[c.leaf+1].WriteRowValues(c.vals2); err != nil {
				return err
			}
			clear(c.vals2)
			c.vals2 = c.vals2[:0]
		}
	}
	p.decs = p.decs[:0] // the decimals' values are now stale
	p.gen++
	p.inGroup += p.inBatch
	p.inBatch = 0
	if p.inGroup >= rowGroupRows {
		p.inGroup = 0
		return p.w.Flush()
	}
	return nil
}

// close writes what is left and the footer; the caller closes the output.
func (p *pqFile) close() error {
	if err := p.flushBatch(); err != nil {
		return err
	}
	return p.w.Close()
}
