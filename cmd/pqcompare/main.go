// Command pqcompare reads two Parquet files with pqarrow and reports
// whether every column holds the same values, and the field IDs of each.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

func read(p string) (arrow.Table, *file.Reader) {
	r, err := file.OpenParquetFile(p, false)
	if err != nil {
		panic(err)
	}
	fr, err := pqarrow.NewFileReader(r, pqarrow.ArrowReadProperties{BatchSize: 1 << 16}, memory.DefaultAllocator)
	if err != nil {
		panic(err)
	}
	t, err := fr.ReadTable(context.Background())
	if err != nil {
		panic(err)
	}
	return t, r
}

func main() {
	a, ra := read(os.Args[1])
	b, rb := read(os.Args[2])
	if a.NumRows() != b.NumRows() || a.NumCols() != b.NumCols() {
		fmt.Println("shape differs", a.NumRows(), b.NumRows(), a.NumCols(), b.NumCols())
		os.Exit(1)
	}
	bad := 0
	for i := 0; i < int(a.NumCols()); i++ {
		fa, fb := a.Schema().Field(i), b.Schema().Field(i)
		if fa.Name != fb.Name || !arrow.TypeEqual(fa.Type, fb.Type, arrow.CheckMetadata()) && !arrow.TypeEqual(fa.Type, fb.Type) {
			fmt.Printf("field %d: %s %s vs %s %s\n", i, fa.Name, fa.Type, fb.Name, fb.Type)
			bad++
			continue
		}
		ca, _ := array.Concatenate(a.Column(i).Data().Chunks(), memory.DefaultAllocator)
		cb, _ := array.Concatenate(b.Column(i).Data().Chunks(), memory.DefaultAllocator)
		if !array.Equal(ca, cb) {
			fmt.Printf("column %s differs\n", fa.Name)
			bad++
		}
	}
	// Field IDs of every schema node, in order.
	sa, sb := ra.MetaData().Schema, rb.MetaData().Schema
	for i := 0; i < sa.NumColumns(); i++ {
		na, nb := sa.Column(i), sb.Column(i)
		if na.Path() != nb.Path() || na.SchemaNode().FieldID() != nb.SchemaNode().FieldID() || na.LogicalType().String() != nb.LogicalType().String() ||
			na.MaxDefinitionLevel() != nb.MaxDefinitionLevel() || na.MaxRepetitionLevel() != nb.MaxRepetitionLevel() {
			fmt.Printf("leaf %d: %s id=%d %s d%d r%d vs %s id=%d %s d%d r%d\n", i, na.Path(), na.SchemaNode().FieldID(), na.LogicalType(), na.MaxDefinitionLevel(), na.MaxRepetitionLevel(),
				nb.Path(), nb.SchemaNode().FieldID(), nb.LogicalType(), nb.MaxDefinitionLevel(), nb.MaxRepetitionLevel())
			bad++
		}
		for p := na.SchemaNode().Parent(); p != nil; p = p.Parent() {
			_ = p
		}
	}
	// Parent (group) IDs: maps carry their field ID on the group.
	for i := 0; i < sa.Root().NumFields(); i++ {
		ga, gb := sa.Root().Field(i), sb.Root().Field(i)
		if ga.Name() != gb.Name() || ga.FieldID() != gb.FieldID() || ga.RepetitionType() != gb.RepetitionType() {
			fmt.Printf("top field %d: %s id=%d %v vs %s id=%d %v\n", i, ga.Name(), ga.FieldID(), ga.RepetitionType(), gb.Name(), gb.FieldID(), gb.RepetitionType())
			bad++
		}
	}
	fmt.Printf("rows=%d cols=%d leaves=%d mismatches=%d row groups %d vs %d\n", a.NumRows(), a.NumCols(), sa.NumColumns(), bad, ra.NumRowGroups(), rb.NumRowGroups())
	if bad > 0 {
		os.Exit(1)
	}
}
