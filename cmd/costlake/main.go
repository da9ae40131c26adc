// Command costlake runs costlake: `dev` for the whole stack in one process,
// `worker` and `gateway` for production, and operator commands.
//
// Built with -tags nodev, for production, it leaves out the embedded
// Temporal server and UI that `dev` and `bench` start: the binary is half
// the size and a worker's memory 70 MiB smaller.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

type command struct {
	name, summary string
	run           func(ctx context.Context, args []string, stdout io.Writer) error
	// devServer marks commands that start an embedded Temporal server:
	// they are not in a production (-tags nodev) build.
	devServer bool
}

var commands = []command{
	{"dev", "run Temporal (with its UI), the worker, the gateway and a local lakehouse in one process", runDev, true},
	{"worker", "run the Temporal worker (production)", runWorker, false},
	{"gateway", "run the HTTP gateway (production)", runGateway, false},
	{"setup", "prepare a Temporal namespace for costlake: add its search attributes (run once per namespace)", runSetup, false},
	{"ingest", "ingest one billing period of a CUR report and print its totals", runIngest, false},
	{"generate", "write a synthetic legacy CUR delivery for demos and benchmarks", runGenerate, false},
	{"apikey", "mint a gateway API key (operator or viewer, optionally scoped to one customer)", runAPIKey, false},
	{"health", "GET a health endpoint and exit non-zero unless it answers 2xx (the image's health check)", runHealth, false},
	{"bench", "measure an ingestion end to end: rows/s, wall time, worker CPU and peak RSS", runBench, true},
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "costlake: AWS billing data into an Apache Iceberg lakehouse, durably, with Temporal.")
	fmt.Fprintln(w, "\nUsage: costlake <command> [flags]   (costlake <command> -h for its flags)")
	fmt.Fprintln(w, "\nCommands:")
	for _, c := range commands {
		if c.devServer && !hasDevServer {
			continue
		}
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
}

func main() {
	if len(os.Args) < 2 || os.Args[1] == "-h" || os.Args[1] == "--help" || os.Args[1] == "help" {
		usage(os.Stdout)
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	for _, c := range commands {
		if c.name == os.Args[1] {
			err := c.run(ctx, os.Args[2:], os.Stdout)
			if errors.Is(err, flag.ErrHelp) {
				return
			}
			if err != nil {
				fmt.Fprintf(os.Stderr, "costlake %s: %v\n", c.name, err)
				os.Exit(1)
			}
			return
		}
	}
	fmt.Fprintf(os.Stderr, "costlake: unknown command %q\n\n", os.Args[1])
	usage(os.Stderr)
	os.Exit(2)
}
