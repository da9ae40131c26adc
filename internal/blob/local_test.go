package blob

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFileRootsConfine: file:// locations open only under the opener's
// roots (none: never), and a confined store's keys, climbing with ".."
// or naming a sibling folder that shares the root's name as a prefix,
// are refused by every method before the file system is touched.
func TestFileRootsConfine(t *testing.T) {
	ctx := context.Background()
	base := t.TempDir()
	root, sibling := filepath.Join(base, "a"), filepath.Join(base, "ab")
	for _, d := range []string{root, sibling} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(sibling, "secret"), []byte("s"), 0o644); err != nil {
		t.Fatal(err)
	}
	loc := func(p string) Location { return Location{Scheme: "file", Prefix: strings.TrimPrefix(p, "/")} }

	if _, err := (Opener{}).Open(ctx, loc(root)); !errors.Is(err, ErrOutsideRoot) {
		t.Fatalf("no roots: want ErrOutsideRoot, got %v", err)
	}
	o := Opener{FileRoots: []string{root}}
	if _, err := o.Open(ctx, loc(sibling)); !errors.Is(err, ErrOutsideRoot) {
		t.Fatalf("a sibling: want ErrOutsideRoot, got %v", err)
	}
	store, err := o.Open(ctx, loc(root))
	if err != nil {
		t.Fatal(err)
	}
	in := strings.TrimPrefix(root, "/") + "/x"
	if err := store.Put(ctx, in, strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Stat(ctx, in); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{
		strings.TrimPrefix(sibling, "/") + "/secret",
		strings.TrimPrefix(root, "/") + "/../ab/secret",
		"etc/passwd",
		"",
	} {
		if _, err := store.Open(ctx, key); !errors.Is(err, ErrOutsideRoot) {
			t.Errorf("Open(%q): want ErrOutsideRoot, got %v", key, err)
		}
		if _, err := store.Stat(ctx, key); !errors.Is(err, ErrOutsideRoot) {
			t.Errorf("Stat(%q): want ErrOutsideRoot, got %v", key, err)
		}
		if err := store.Put(ctx, key, strings.NewReader("x")); !errors.Is(err, ErrOutsideRoot) {
			t.Errorf("Put(%q): want ErrOutsideRoot, got %v", key, err)
		}
		if err := store.Delete(ctx, key); !errors.Is(err, ErrOutsideRoot) {
			t.Errorf("Delete(%q): want ErrOutsideRoot, got %v", key, err)
		}
		if _, err := store.Folders(ctx, key); !errors.Is(err, ErrOutsideRoot) {
			t.Errorf("Folders(%q): want ErrOutsideRoot, got %v", key, err)
		}
		if _, err := store.List(ctx, key+"/"); !errors.Is(err, ErrOutsideRoot) {
			t.Errorf("List(%q): want ErrOutsideRoot, got %v", key, err)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(sibling, "secret")); string(b) != "s" {
		t.Fatal("the sibling's file was written")
	}
}
