package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/costlake/costlake/internal/config"
	"github.com/costlake/costlake/internal/searchattr"
)

// runSetup prepares a Temporal namespace for costlake: it adds the search
// attributes every costlake run is started with. Running it again changes
// nothing; an attribute already there with another type is an error that
// names it.
func runSetup(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("setup", flag.ContinueOnError)
	var tc config.Temporal
	config.AddTemporalFlags(fs, &tc)
	if err := fs.Parse(args); err != nil {
		return err
	}
	c, err := dial(tc, nil, nil)
	if err != nil {
		return err
	}
	defer c.Close()
	added, err := searchattr.Ensure(ctx, c, tc.Namespace)
	if err != nil {
		return err
	}
	var all []string
	for name := range searchattr.Types() {
		all = append(all, name)
	}
	slices.Sort(all)
	if len(added) == 0 {
		fmt.Fprintf(stdout, "namespace %s already has costlake's search attributes (%s, Keyword)\n", tc.Namespace, strings.Join(all, ", "))
		return nil
	}
	fmt.Fprintf(stdout, "namespace %s: added the search attributes %s (Keyword)\n", tc.Namespace, strings.Join(added, ", "))
	return nil
}
