package cur

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/costlake/costlake/internal/billing"
)

var header = []string{"identity/LineItemId", "lineItem/UsageAccountId", "lineItem/UnblendedCost", "resourceTags/user:Name"}

func gz(t *testing.T, s string) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write([]byte(s))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

const good = "identity/LineItemId,lineItem/UsageAccountId,lineItem/UnblendedCost,resourceTags/user:Name\n" +
	"a,111122223333,0.5,web\n" +
	"b,111122223333,5.0E-5,\n"

func readAll(t *testing.T, data []byte, compression string, want []string) (int, error) {
	t.Helper()
	r, err := NewChunkReader(bytes.NewReader(data), "s3://b/k.csv.gz", compression, want)
	if err != nil {
		return 0, err
	}
	defer r.Close()
	rec := billing.NewRecord()
	n := 0
	for {
		err := r.Next(rec)
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		n++
	}
}

func TestChunkReaderReadsRows(t *testing.T) {
	r, err := NewChunkReader(bytes.NewReader(gz(t, good)), "f", "GZIP", header)
	if err != nil {
		t.Fatal(err)
	}
	rec := billing.NewRecord()
	if err := r.Next(rec); err != nil {
		t.Fatal(err)
	}
	if got := rec.Values[billing.MustIndex(billing.ColUnblendedCost)]; got != "0.5" {
		t.Errorf("cost = %q", got)
	}
	tags := rec.Entries[billing.MustIndex(billing.ColResourceTags)]
	if len(tags) != 1 || tags[0] != (billing.Entry{Key: "user:Name", Value: "web"}) {
		t.Errorf("tags = %v", tags)
	}
	if err := r.Next(rec); err != nil {
		t.Fatal(err)
	}
	if len(rec.Entries[billing.MustIndex(billing.ColResourceTags)]) != 0 {
		t.Error("empty tag values must not become map entries, and records must reset")
	}
	if r.Line() != 3 {
		t.Errorf("line = %d, want 3", r.Line())
	}
}

func TestChunkReaderBadInput(t *testing.T) {
	full := gz(t, good+strings.Repeat("c,111122223333,1.25,x\n", 5000))
	cases := []struct {
		name        string
		data        []byte
		compression string
		want        error
		line        int
	}{
		{"empty file", nil, "GZIP", ErrEmptyChunk, 0},
		{"gzip of nothing", gz(t, ""), "GZIP", ErrEmptyChunk, 1},
		{"not gzip", []byte("plain text, not gzip"), "GZIP", ErrCorruptChunk, 0},
		{"truncated gzip", full[:len(full)/2], "GZIP", ErrCorruptChunk, 0},
		{"header differs", gz(t, strings.Replace(good, "lineItem/UnblendedCost", "lineItem/BlendedCost", 1)), "GZIP", ErrHeaderMismatch, 1},
		{"extra field", gz(t, good+"c,1,2,3,4\n"), "GZIP", ErrMalformedCSV, 4},
		{"bad quote", gz(t, good+"c,\"1,2,3\n"), "GZIP", ErrMalformedCSV, 4},
		{"unknown compression", gz(t, good), "BZIP2", ErrUnsupportedCompression, 0},
		{"absurdly long line", gz(t, good+"c,111122223333,1,"+strings.Repeat("x", MaxLineBytes+10)+"\n"), "GZIP", ErrLineTooLong, 4},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := readAll(t, c.data, c.compression, header)
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			var fe *FileError
			if !errors.As(err, &fe) || fe.File != "s3://b/k.csv.gz" {
				t.Fatalf("err = %v, want a *FileError naming the file", err)
			}
			if c.line != 0 && fe.Line != c.line {
				t.Errorf("line = %d, want %d (%v)", fe.Line, c.line, err)
			}
		})
	}
}

// A gzip whose deflate data is damaged in the middle (not truncated) must
// be CorruptChunk, never a retryable read error.
func TestChunkReaderDamagedDeflate(t *testing.T) {
	data := gz(t, good+strings.Repeat("c,111122223333,1.25,x\n", 20000))
	for i := len(data) / 3; i < len(data)/3+64; i++ {
		data[i] ^= 0xA5
	}
	_, err := readAll(t, data, "GZIP", header)
	if !errors.Is(err, ErrCorruptChunk) && !errors.Is(err, ErrMalformedCSV) {
		t.Fatalf("err = %v, want CorruptChunk", err)
	}
	var fe *FileError
	if !errors.As(err, &fe) {
		t.Fatalf("err = %v, want a *FileError", err)
	}
}
