// Command convbench measures the ConvertChunk activity outside Temporal:
// it generates a delivery once (gen), then converts its chunks K at a time
// (run) and reports the CPU time (user+sys), peak RSS and peak anonymous
// RSS of the conversion, and the bytes of Parquet written.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/testsuite"

	"github.com/costlake/costlake/activities"
	"github.com/costlake/costlake/internal/blob"
	"github.com/costlake/costlake/internal/contract/ingest"
	"github.com/costlake/costlake/internal/devtools/synth"
	"github.com/costlake/costlake/internal/period"
	"github.com/costlake/costlake/lakehouse"
)

func main() {
	dir := flag.String("dir", "/tmp/convbench", "folder of the generated delivery")
	gen := flag.Bool("gen", false, "generate the delivery")
	rows := flag.Int("rows", 1_000_000, "rows to generate")
	files := flag.Int("files", 8, "chunks to generate")
	chunks := flag.Int("chunks", 8, "chunks to convert")
	par := flag.Int("par", 2, "chunks converted at once")
	cpuprof := flag.String("cpuprofile", "", "write a CPU profile")
	memprof := flag.String("memprofile", "", "write a heap profile at -memat")
	memat := flag.Duration("memat", 3*time.Second, "when to write the heap profile")
	flag.Parse()
	ctx := context.Background()
	root := filepath.Join(*dir, "bucket")
	if *gen {
		os.RemoveAll(*dir)
		if _, err := synth.Generate(ctx, blob.NewLocal(root), synth.Options{Prefix: "cur", Report: "bench", Period: "2026-10", Rows: *rows, Files: *files, Seed: 3}); err != nil {
			log.Fatal(err)
		}
		return
	}
	work, err := os.MkdirTemp("", "convbench-")
	if err != nil {
		log.Fatal(err)
	}
	keep := os.Getenv("CONVBENCH_KEEP") != ""
	if !keep {
		defer os.RemoveAll(work)
	} else {
		fmt.Println("work:", work)
	}
	lake, err := lakehouse.Open(ctx, lakehouse.Config{Catalog: filepath.Join(work, "catalog.db"), Warehouse: "file://" + filepath.Join(work, "warehouse")})
	if err != nil {
		log.Fatal(err)
	}
	defer lake.Close()
	newEnv := func() *testsuite.TestActivityEnvironment {
		var suite testsuite.WorkflowTestSuite
		suite.SetLogger(tlog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
		env := suite.NewTestActivityEnvironment()
		env.RegisterActivity(&activities.Ingest{Lake: lake, AWS: activities.AWS{Blobs: blob.Opener{FileRoots: []string{root}}}})
		return env
	}
	source := "file://" + filepath.Join(root, "cur", "bench")
	loc, err := newEnv().ExecuteActivity(ingest.LocateDeliveryActivity, ingest.LocateDeliveryInput{Source: source, Period: period.MustParse("2026-10")})
	if err != nil {
		log.Fatal(err)
	}
	var located ingest.LocateDeliveryResult
	if err := loc.Get(&located); err != nil {
		log.Fatal(err)
	}
	if *chunks > len(located.ChunkKeys) {
		*chunks = len(located.ChunkKeys)
	}

	var peakAnon atomic.Int64
	stop := make(chan struct{})
	go func() {
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			if a := rssAnon(); a > peakAnon.Load() {
				peakAnon.Store(a)
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	if *cpuprof != "" {
		f, err := os.Create(*cpuprof)
		if err != nil {
			log.Fatal(err)
		}
		pprof.StartCPUProfile(f)
	}
	if *memprof != "" {
		time.AfterFunc(*memat, func() {
			f, _ := os.Create(*memprof)
			pprof.WriteHeapProfile(f)
			f.Close()
		})
	}
	u0, s0 := cpu()
	start := time.Now()
	var wg sync.WaitGroup
	var rowsOut atomic.Int64
	next := make(chan int)
	for w := 0; w < *par; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			env := newEnv()
			for i := range next {
				f, err := env.ExecuteActivity(ingest.ConvertChunkActivity, ingest.ConvertChunkInput{
					Source: source, Period: period.MustParse("2026-10"), Format: located.Format, ManifestKey: located.ManifestKey, AssemblyID: located.AssemblyID,
					ChunkKey: located.ChunkKeys[i], PayerAccountID: located.PayerAccountID, FilePrefix: "bench",
					ChunkIndex: i,
				})
				if err != nil {
					log.Fatal(err)
				}
				var res ingest.ConvertChunkResult
				if err := f.Get(&res); err != nil {
					log.Fatal(err)
				}
				rowsOut.Add(res.Rows)
			}
		}()
	}
	for i := 0; i < *chunks; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	wall := time.Since(start)
	u1, s1 := cpu()
	if *cpuprof != "" {
		pprof.StopCPUProfile()
	}
	close(stop)
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	var size int64
	filepath.WalkDir(filepath.Join(work, "warehouse"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".parquet") {
			if fi, err := d.Info(); err == nil {
				size += fi.Size()
			}
		}
		return nil
	})
	cpuS := (u1 - u0 + s1 - s0).Seconds()
	n := rowsOut.Load()
	fmt.Printf("rows=%d cpu=%.2fs user=%.2fs sys=%.2fs cpu_per_1M=%.2fs wall=%.2fs maxrss=%dMiB peak_anon=%dMiB parquet=%.1fMiB\n",
		n, cpuS, (u1 - u0).Seconds(), (s1 - s0).Seconds(), cpuS*1e6/float64(n), wall.Seconds(), ru.Maxrss/1024, peakAnon.Load()/1024, float64(size)/(1<<20))
}

func cpu() (time.Duration, time.Duration) {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano()), time.Duration(ru.Stime.Nano())
}

// rssAnon returns RssAnon from /proc/self/status in KiB.
func rssAnon() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "RssAnon:"); ok {
			v, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return v
		}
	}
	return 0
}
