//go:build nodev

package main

import (
	"context"
	"fmt"
	"io"
)

// hasDevServer says whether this build embeds the Temporal server.
const hasDevServer = false

func runDev(context.Context, []string, io.Writer) error { return errNoDevServer("dev") }

func runBench(context.Context, []string, io.Writer) error { return errNoDevServer("bench") }

func errNoDevServer(cmd string) error {
	return fmt.Errorf("this is a production build (-tags nodev) without the embedded Temporal server that %s starts; use a build without the tag", cmd)
}
