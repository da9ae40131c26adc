package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/costlake/costlake/internal/config"
	"github.com/costlake/costlake/internal/cur"
)

// workerBounds are a worker's defences against hostile deliveries: the
// local folders file:// may name, the bounds of each data file, and the
// Go runtime's memory limit.
type workerBounds struct {
	fileRoots   string
	limits      cur.Limits
	memoryLimit string
}

// addBoundsFlags registers the worker's bounds. fileRoots is the default
// of --file-roots: none for a worker, the data folder for `costlake dev`.
func addBoundsFlags(fs *flag.FlagSet, b *workerBounds, fileRoots string) {
	d := cur.DefaultLimits
	fs.StringVar(&b.fileRoots, "file-roots", config.Env("COSTLAKE_FILE_ROOTS", fileRoots), "comma-separated local folders that file:// sources and export destinations may name; empty refuses file:// [COSTLAKE_FILE_ROOTS]")
	bytesVar(fs, &b.limits.MaxObjectBytes, "max-object-bytes", "COSTLAKE_MAX_OBJECT_BYTES", d.MaxObjectBytes, "largest data file read (stored size, checked before download)")
	bytesVar(fs, &b.limits.MaxDecompressedBytes, "max-decompressed-bytes", "COSTLAKE_MAX_DECOMPRESSED_BYTES", d.MaxDecompressedBytes, "most one chunk may inflate to")
	fs.Int64Var(&b.limits.MaxDecompressionRatio, "max-decompression-ratio", int64(envInt("COSTLAKE_MAX_DECOMPRESSION_RATIO", int(d.MaxDecompressionRatio))), "most a chunk may inflate per stored byte, past --decompression-floor [COSTLAKE_MAX_DECOMPRESSION_RATIO]")
	bytesVar(fs, &b.limits.DecompressionFloor, "decompression-floor", "COSTLAKE_DECOMPRESSION_FLOOR", d.DecompressionFloor, "what any chunk may inflate to, whatever its ratio")
	bytesVar(fs, &b.limits.MaxRecordBytes, "max-record-bytes", "COSTLAKE_MAX_RECORD_BYTES", d.MaxRecordBytes, "largest CSV record, all its lines together")
	fs.IntVar(&b.limits.MaxFields, "max-fields", envInt("COSTLAKE_MAX_FIELDS", d.MaxFields), "most columns of a data file [COSTLAKE_MAX_FIELDS]")
	bytesVar(fs, &b.limits.MaxPageBytes, "max-parquet-page-bytes", "COSTLAKE_MAX_PARQUET_PAGE_BYTES", d.MaxPageBytes, "largest Parquet page")
	bytesVar(fs, &b.limits.MaxColumnChunkBytes, "max-parquet-column-chunk-bytes", "COSTLAKE_MAX_PARQUET_COLUMN_CHUNK_BYTES", d.MaxColumnChunkBytes, "largest Parquet column chunk, uncompressed")
	fs.StringVar(&b.memoryLimit, "memory-limit", config.Env("COSTLAKE_MEMORY_LIMIT", "auto"), "the Go runtime's soft memory limit (bytes, or with KiB/MiB/GiB); auto is 3/4 of the container's or machine's memory; off for none; GOMEMLIMIT, when set, wins [COSTLAKE_MEMORY_LIMIT]")
}

// apply sets the memory limit and returns the opener roots and limits.
func (b *workerBounds) apply() ([]string, cur.Limits, error) {
	var roots []string
	for _, r := range strings.Split(b.fileRoots, ",") {
		if r = strings.TrimSpace(r); r == "" {
			continue
		}
		abs, err := filepath.Abs(r)
		if err != nil {
			return nil, b.limits, fmt.Errorf("--file-roots %q: %w", r, err)
		}
		roots = append(roots, abs)
	}
	if err := setMemoryLimit(b.memoryLimit); err != nil {
		return nil, b.limits, err
	}
	return roots, b.limits, nil
}

// setMemoryLimit sets the runtime's soft memory limit, unless GOMEMLIMIT
// is set: the garbage collector then works harder near the limit instead
// of letting the heap grow until the kernel kills the worker. It is soft:
// the bounds on each file are what keep a hostile one from needing more.
func setMemoryLimit(v string) error {
	if os.Getenv("GOMEMLIMIT") != "" {
		return nil
	}
	var limit int64
	switch v {
	case "off", "none", "0":
		return nil
	case "auto", "":
		total := availableMemory()
		if total <= 0 {
			return nil
		}
		limit = total / 4 * 3
	default:
		n, err := parseBytes(v)
		if err != nil || n <= 0 {
			return fmt.Errorf("--memory-limit %q: want bytes (e.g. 4GiB), auto or off", v)
		}
		limit = n
	}
	debug.SetMemoryLimit(limit)
	return nil
}

// availableMemory is the cgroup's memory limit when there is one, else
// the machine's memory; 0 when neither can be read.
func availableMemory() int64 {
	for _, f := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		if b, err := os.ReadFile(f); err == nil {
			if n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil && n > 0 && n < 1<<50 {
				return n
			}
		}
	}
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			kib, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err == nil {
				return kib << 10
			}
		}
	}
	return 0
}

// bytesVar registers a size flag that takes bytes or KiB/MiB/GiB/TiB.
func bytesVar(fs *flag.FlagSet, p *int64, name, env string, def int64, usage string) {
	*p = def
	if v := config.Env(env, ""); v != "" {
		if n, err := parseBytes(v); err == nil {
			*p = n
		}
	}
	fs.Func(name, fmt.Sprintf("%s (bytes, or with KiB/MiB/GiB/TiB; default %s) [%s]", usage, formatBytes(def), env), func(s string) error {
		n, err := parseBytes(s)
		if err != nil || n <= 0 {
			return fmt.Errorf("want a positive size such as 512MiB")
		}
		*p = n
		return nil
	})
}

func parseBytes(s string) (int64, error) {
	s = strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}} {
		if rest, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = strings.TrimSpace(rest), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, err
	}
	return n * mult, nil
}

func formatBytes(n int64) string {
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.mult && n%u.mult == 0 {
			return strconv.FormatInt(n/u.mult, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}
