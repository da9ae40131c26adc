package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"path"

	"github.com/costlake/costlake/internal/blob"
	"github.com/costlake/costlake/internal/config"
	"github.com/costlake/costlake/internal/devtools/synth"
)

func runGenerate(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("generate", flag.ContinueOnError)
	var sc config.Storage
	config.AddStorageFlags(fs, &sc, ".costlake")
	out := fs.String("out", "", "where the bucket prefix goes: /path, file:///path or s3://bucket/prefix (required)")
	var o synth.Options
	fs.StringVar(&o.Report, "report", "costlake-demo", "report name")
	fs.StringVar(&o.Period, "period", "", "billing period, YYYY-MM (required)")
	fs.IntVar(&o.Rows, "rows", 10000, "data rows in all")
	fs.IntVar(&o.Files, "files", 1, "csv.gz chunks")
	fs.Int64Var(&o.Seed, "seed", 1, "random seed; the same seed writes the same bytes")
	fs.StringVar(&o.Payer, "payer", "111122223333", "payer account ID")
	fs.IntVar(&o.LinkedAccounts, "accounts", 4, "usage accounts, the payer included")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" || o.Period == "" {
		fs.Usage()
		return fmt.Errorf("--out and --period are required")
	}
	loc, err := blob.ParseLocation(*out)
	if err != nil {
		return err
	}
	opener := sc.Opener()
	if loc.Scheme == "file" {
		opener.FileRoots = []string{"/" + loc.Prefix} // where the operator said to write
	}
	store, err := opener.Open(ctx, loc)
	if err != nil {
		return err
	}
	o.Prefix, o.Bucket = loc.Prefix, loc.Bucket
	res, err := synth.Generate(ctx, store, o)
	if err != nil {
		return err
	}
	src := blob.Location{Scheme: loc.Scheme, Bucket: loc.Bucket, Prefix: path.Join(loc.Prefix, o.Report)}
	fmt.Fprintf(stdout, "wrote %d rows in %d chunks, assembly %s\nmanifest: %s\ningest it with:\n  costlake ingest --source %s --period %s\n",
		res.Rows, len(res.ReportKeys), res.AssemblyID, loc.URLOf(res.ManifestKey), src, o.Period)
	return nil
}
