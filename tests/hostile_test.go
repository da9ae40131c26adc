package tests

import (
	"bytes"
	"encoding/csv"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/stretchr/testify/require"

	"github.com/costlake/costlake/internal/blob"
	"github.com/costlake/costlake/internal/contract/ingest"
	"github.com/costlake/costlake/internal/cur"
)

// heapPeak samples the heap while f runs and returns how far it grew past
// what was live before: the worker runs in this process, so its
// conversion's memory shows here.
func heapPeak(f func()) uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base, peak := ms.HeapAlloc, ms.HeapAlloc
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapAlloc)
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	f()
	close(done)
	wg.Wait()
	if peak < base {
		return 0
	}
	return peak - base
}

// hostileChunk is a gzip CSV chunk: the header, then a row whose first
// field is quoted and never closed, of mib MiB with a line break every
// MiB, so no line is too long and only the record as a whole is.
func hostileChunk(t *testing.T, header []string, mib int) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	require.NoError(t, err)
	w := csv.NewWriter(gz)
	require.NoError(t, w.Write(header))
	w.Flush()
	line := bytes.Repeat([]byte("a"), 1<<20)
	line[len(line)-1] = '\n'
	_, err = gz.Write([]byte(`"`))
	require.NoError(t, err)
	for range mib {
		_, err := gz.Write(line)
		require.NoError(t, err)
	}
	require.NoError(t, gz.Close())
	return buf.Bytes()
}

// TestHostileDeliveriesAreBounded ingests deliveries crafted against the
// worker, through MinIO and a local folder, with the worker's default
// limits. A chunk of a few MiB holding one quoted field of 512 MiB fails
// as RecordTooLarge once the record passes 16 MiB, not after the worker
// has held the field; a manifest key that climbs out of the report with
// ".." fails as InvalidManifest before the file it names is opened, and
// the message holds nothing of that file. Neither is retried, and the
// table keeps its good period.
func TestHostileDeliveriesAreBounded(t *testing.T) {
	s := newStack(t, true)
	bucket, keepsTable := s.goodPeriod(t, "hostile-cur")

	t.Run("quoted field of 512 MiB", func(t *testing.T) {
		d, _ := sampleDelivery(t, "bomb", "20231204T000000Z")
		d.chunks[1] = hostileChunk(t, d.header, 512)
		require.Less(t, len(d.chunks[1]), 8<<20, "the chunk is small; what it inflates to is not")
		d.upload(t, bucket, "hostile-cur")
		var (
			err      error
			attempts int32
		)
		grew := heapPeak(func() { _, attempts, err = s.ingestAs("s3://hostile-cur/cur/bomb", "2023-11", nil) })
		t.Logf("heap grew by %d MiB", grew>>20)
		requireNamedFailure(t, err, attempts, ingest.ErrTypeRecordTooLarge,
			[]string{"s3://hostile-cur/cur/bomb/20231101-20231201/20231204T000000Z/bomb-2.csv.gz line 2", "more than 16777216 bytes"},
			[]string{"aaaaaaaa"})
		require.Less(t, grew, uint64(256<<20), "a hostile record must not grow the worker's heap")
		keepsTable(t)
	})

	t.Run("manifest key climbs out of the report", func(t *testing.T) {
		root := t.TempDir()
		local := blob.NewLocal(root)
		d, _ := sampleDelivery(t, "climb", "20231205T000000Z")
		m := d.upload(t, local, "local")
		// A file elsewhere on the worker's disk, with a header the
		// manifest does not promise: reading it would fail as
		// HeaderMismatch and quote it.
		secret := hostileSecret(t, filepath.Join(root, "elsewhere", "secret.csv.gz"))
		m.ReportKeys[1] = d.folder(t) + "/" + d.assembly + "/../../../../elsewhere/secret.csv.gz"
		putManifest(t, local, d.folder(t)+"/climb-Manifest.json", m)
		putManifest(t, local, d.folder(t)+"/"+d.assembly+"/climb-Manifest.json", m)
		var (
			err      error
			attempts int32
		)
		grew := heapPeak(func() { _, attempts, err = s.ingestAs("file://"+filepath.Join(root, "cur", "climb"), "2023-11", nil) })
		requireNamedFailure(t, err, attempts, ingest.ErrTypeInvalidManifest,
			[]string{"climb-Manifest.json", "climbs out of its folder"},
			[]string{secret, "HeaderMismatch"})
		require.Less(t, grew, uint64(256<<20))
		keepsTable(t)
	})
}

// hostileSecret writes a gzip CSV whose header is a secret, and returns it.
func hostileSecret(t *testing.T, path string) string {
	t.Helper()
	const secret = "TOP-SECRET-COLUMN-7f3a"
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	_, err := gz.Write([]byte(secret + ",b\n1,2\n"))
	require.NoError(t, err)
	require.NoError(t, gz.Close())
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, os.WriteFile(path, buf.Bytes(), 0o644))
	return secret
}

// TestDeliveryBoundsAreConfigured runs a worker with small limits and
// one local folder: a chunk over its size is refused before download
// (ChunkTooLarge), one that inflates past its ratio is a
// DecompressionBomb, and a file:// source outside the folder is
// InvalidSource. None is retried.
func TestDeliveryBoundsAreConfigured(t *testing.T) {
	allowed := t.TempDir()
	s := newStackOpts(t, stackOptions{
		fileRoots: []string{allowed},
		limits:    cur.Limits{MaxObjectBytes: 4 << 20, DecompressionFloor: 1 << 20, MaxDecompressionRatio: 50},
	})
	local := blob.NewLocal(allowed)

	t.Run("chunk over the size limit", func(t *testing.T) {
		d, _ := sampleDelivery(t, "big", "20231204T000000Z")
		d.chunks[2] = bytes.Repeat([]byte{0x1f}, 5<<20) // never read: its size refuses it
		d.upload(t, local, "local")
		_, attempts, err := s.ingestAs("file://"+filepath.Join(allowed, "cur", "big"), "2023-11", nil)
		requireNamedFailure(t, err, attempts, ingest.ErrTypeChunkTooLarge,
			[]string{"big-3.csv.gz", "5242880 bytes stored, 4194304 at most"}, nil)
	})
	t.Run("chunk that inflates too far", func(t *testing.T) {
		d, _ := sampleDelivery(t, "inflate", "20231205T000000Z")
		// Empty lines are skipped, never a record: only the inflation
		// bound stops them.
		var buf bytes.Buffer
		gz, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		require.NoError(t, err)
		_, err = gz.Write([]byte(strings.Join(d.header, ",") + "\n"))
		require.NoError(t, err)
		_, err = gz.Write(bytes.Repeat([]byte("\n"), 64<<20))
		require.NoError(t, err)
		require.NoError(t, gz.Close())
		d.chunks[0] = buf.Bytes()
		d.upload(t, local, "local")
		_, attempts, err := s.ingestAs("file://"+filepath.Join(allowed, "cur", "inflate"), "2023-11", nil)
		requireNamedFailure(t, err, attempts, ingest.ErrTypeDecompressionBomb,
			[]string{"inflate-1.csv.gz", "50×"}, nil)
	})
	t.Run("local source outside the worker's folders", func(t *testing.T) {
		elsewhere := t.TempDir()
		d, _ := sampleDelivery(t, "outside", "20231206T000000Z")
		d.upload(t, blob.NewLocal(elsewhere), "local")
		_, attempts, err := s.ingestAs("file://"+filepath.Join(elsewhere, "cur", "outside"), "2023-11", nil)
		requireNamedFailure(t, err, attempts, ingest.ErrTypeInvalidSource,
			[]string{"not under the worker's local folders", allowed}, nil)
	})
}
