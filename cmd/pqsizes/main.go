// Command pqsizes prints the compressed bytes per column of Parquet files.
package main

import (
	"fmt"
	"os"
	"sort"

	"github.com/apache/arrow-go/v18/parquet/file"
)

func main() {
	sizes := map[string][2]int64{}
	for _, p := range os.Args[1:] {
		r, err := file.OpenParquetFile(p, false)
		if err != nil {
			panic(err)
		}
		md := r.MetaData()
		for g := 0; g < md.NumRowGroups(); g++ {
			rg := md.RowGroup(g)
			for c := 0; c < rg.NumColumns(); c++ {
				cc, _ := rg.ColumnChunk(c)
				k := cc.PathInSchema().String()
				s := sizes[k]
				s[0] += cc.TotalCompressedSize()
				s[1] += cc.TotalUncompressedSize()
				sizes[k] = s
			}
		}
		r.Close()
	}
	keys := make([]string, 0, len(sizes))
	for k := range sizes {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return sizes[keys[i]][0] > sizes[keys[j]][0] })
	for _, k := range keys {
		fmt.Printf("%10d %10d %s\n", sizes[k][0], sizes[k][1], k)
	}
}
