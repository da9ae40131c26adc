package cur

import (
	"encoding/csv"
	"errors"
	"io"
	"math/rand"
	"reflect"
	"strings"
	"testing"
)

// sameAsEncodingCSV reads input with csvReader and with encoding/csv and
// fails unless both give the same records and the same first error.
func sameAsEncodingCSV(t *testing.T, input string) {
	t.Helper()
	want := csv.NewReader(strings.NewReader(input))
	want.ReuseRecord = true
	got := newCSVReaderFast(strings.NewReader(input))
	for n := 0; ; n++ {
		wr, werr := want.Read()
		gr, gerr := got.Read()
		if !reflect.DeepEqual(wr, gr) && (len(wr) != 0 || len(gr) != 0) {
			t.Fatalf("%q record %d: got %q, encoding/csv %q", input, n, gr, wr)
		}
		if !reflect.DeepEqual(werr, gerr) {
			t.Fatalf("%q record %d: got error %v, encoding/csv %v", input, n, gerr, werr)
		}
		if werr != nil {
			var pe *csv.ParseError
			if errors.Is(werr, io.EOF) || !errors.As(werr, &pe) || pe.Err != csv.ErrFieldCount {
				return // encoding/csv goes on after a wrong field count only
			}
		}
	}
}

func TestCSVReaderMatchesEncodingCSV(t *testing.T) {
	for _, in := range []string{
		"", "\n", "\n\n", "a", "a\n", "a,b\n", "a,b", "a,b,\n", ",\n", ",,,\n",
		"a,b\r\n c,d\r\n", "a\r", "a\rb,c\n", "a,b\n\n\nc,d\n",
		`"a","b"` + "\n", `"a""b",c` + "\n", `"""",""` + "\n", `"",""` + "\n", `""""""` + "\n",
		`"a,b",c` + "\n", "\"a\nb\",c\nd,e\n", "\"a\r\nb\",c\r\n", "\"a\n\nb\"\n",
		`a"b,c` + "\n", `"a"b,c` + "\n", `"a" ,c` + "\n", `"a`, "\"a\n", "\"a\nb", `a,"b`, `"a"` + "\r", "\"a\"\r\n",
		"a,b\nc\n", "a,b\nc,d,e\n", "a\nb,c\nd\n", "a,b\nc,\"d\nx\"\ne,f,g\n",
		"é,\"ü\"\n", "\xff,\"\xfe\"\n", " a , b \n",
		"identity,\"Amazon Web Services, Inc.\",,,0.09,\"$0.09 per GB\"\n",
	} {
		sameAsEncodingCSV(t, in)
	}
}

func TestCSVReaderMatchesEncodingCSVRandom(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	alphabet := []string{"a", "b", ",", ",", "\"", "\"", "\"\"", "\n", "\r", "\r\n", " ", "é", "xyz"}
	n := 20000
	if testing.Short() {
		n = 2000
	}
	for i := 0; i < n; i++ {
		var b strings.Builder
		for j := rng.Intn(40); j > 0; j-- {
			b.WriteString(alphabet[rng.Intn(len(alphabet))])
		}
		sameAsEncodingCSV(t, b.String())
	}
	// Well-formed files with quoted fields, as a generator writes them.
	for i := 0; i < n/10; i++ {
		var b strings.Builder
		w := csv.NewWriter(&b)
		for r := rng.Intn(5); r >= 0; r-- {
			rec := make([]string, 3)
			for k := range rec {
				for j := rng.Intn(6); j > 0; j-- {
					rec[k] += alphabet[rng.Intn(len(alphabet))]
				}
			}
			w.Write(rec)
		}
		w.Flush()
		sameAsEncodingCSV(t, b.String())
	}
}

func FuzzCSVReader(f *testing.F) {
	f.Add("a,\"b\"\"c\",d\n\"e\nf\",,\n")
	f.Add("a\"b\n")
	f.Fuzz(func(t *testing.T, in string) { sameAsEncodingCSV(t, in) })
}

func BenchmarkCSVReader(b *testing.B) {
	line := "rms6sxjwwje4ga67soi3l6lrtd3vsgkd3dq3eajcbxvpqre5qttd,2026-10-04T07:00:00Z/2026-10-04T08:00:00Z,,\"Amazon Web Services, Inc.\",AWS,Anniversary,111122223333," +
		strings.Repeat("2026-10-01T00:00:00.000Z,,0.09,4.0725,,,USD,", 14) + "\"$0.09 per GB - first 10 TB / month data transfer out\",,,,,,,\n"
	input := strings.Repeat(line, 10000)
	for _, impl := range []string{"encoding-csv", "csvReader"} {
		b.Run(impl, func(b *testing.B) {
			b.SetBytes(int64(len(input)))
			for i := 0; i < b.N; i++ {
				var read func() ([]string, error)
				if impl == "csvReader" {
					read = newCSVReaderFast(strings.NewReader(input)).Read
				} else {
					r := csv.NewReader(strings.NewReader(input))
					r.ReuseRecord = true
					read = r.Read
				}
				for {
					if _, err := read(); err != nil {
						break
					}
				}
			}
		})
	}
}
