package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/costlake/costlake/gateway"
	"github.com/costlake/costlake/internal/payer"
)

// runAPIKey mints a gateway API key: it prints the key once and stores
// only its SHA-256 in the keys file.
func runAPIKey(_ context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("apikey", flag.ContinueOnError)
	name := fs.String("name", "", "a name for the key, recorded with each action taken with it (required)")
	role := fs.String("role", gateway.RoleViewer, "operator or viewer")
	customer := fs.String("customer", "", "scope the key to one customer ID (empty: every customer)")
	file := fs.String("file", "", "keys file to add the key to (created when missing); without it the entry is printed")
	expiresIn := fs.Duration("expires-in", 0, "the key stops working this long from now, e.g. 2160h (0: never)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *name == "" {
		return errors.New("--name is required")
	}
	if *role != gateway.RoleOperator && *role != gateway.RoleViewer {
		return fmt.Errorf("--role must be %s or %s", gateway.RoleOperator, gateway.RoleViewer)
	}
	if *customer != "" && !payer.ValidCustomerID(*customer) {
		return fmt.Errorf("--customer %q is not a customer ID (lowercase letters, digits and dashes)", *customer)
	}
	if *expiresIn < 0 {
		return errors.New("--expires-in must be positive")
	}
	key, entry := gateway.NewAPIKey(*name, *role, *customer)
	if *expiresIn > 0 {
		at := time.Now().UTC().Add(*expiresIn).Truncate(time.Second)
		entry.ExpiresAt = &at
	}
	if *file == "" {
		b, _ := json.Marshal(entry)
		fmt.Fprintf(stdout, "key:   %s\nentry: %s\n", key, b)
		return nil
	}
	if err := addKey(*file, entry); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s\n", key)
	fmt.Fprintf(os.Stderr, "added key %q (%s) to %s; the key above is shown only once\n", *name, *role, *file)
	return nil
}

// addKey appends an entry to a keys file, creating it when missing.
func addKey(path string, entry gateway.APIKey) error {
	var f gateway.KeysFile
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return err
	default:
		if err := json.Unmarshal(data, &f); err != nil {
			return fmt.Errorf("%w: %s: %v", gateway.ErrKeysFile, path, err)
		}
	}
	for _, k := range f.Keys {
		if k.Name == entry.Name {
			return fmt.Errorf("%s already has a key named %q", path, entry.Name)
		}
	}
	f.Keys = append(f.Keys, entry)
	out, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(out, '\n'), 0o600)
}
