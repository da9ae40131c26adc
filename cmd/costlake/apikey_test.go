package main

import (
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/costlake/costlake/gateway"
)

// A key minted with --expires-in carries its expiry into the keys file,
// and the file still loads.
func TestAPIKeyExpiresIn(t *testing.T) {
	file := filepath.Join(t.TempDir(), "keys.json")
	before := time.Now().UTC()
	var out strings.Builder
	if err := runAPIKey(context.Background(), []string{"--name", "temp", "--file", file, "--expires-in", "2h"}, &out); err != nil {
		t.Fatal(err)
	}
	keys, err := gateway.LoadAPIKeys(file)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || keys[0].ExpiresAt == nil {
		t.Fatalf("keys %+v: want one with an expiry", keys)
	}
	if at := *keys[0].ExpiresAt; at.Before(before.Add(2*time.Hour-time.Second)) || at.After(time.Now().Add(2*time.Hour)) {
		t.Errorf("expires at %s, want two hours after %s", at, before)
	}
	if err := runAPIKey(context.Background(), []string{"--name", "bad", "--expires-in", "-1h"}, io.Discard); err == nil {
		t.Error("a negative --expires-in is accepted")
	}
}
