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

// TestFileRootsSymlinks: a symbolic link inside a root, to a file or a
// folder outside every root, is refused by reads, lists and writes with
// ErrOutsideRoot, and lists do not show it or descend through it; links
// that stay inside a root keep working.
func TestFileRootsSymlinks(t *testing.T) {
	ctx := context.Background()
	base := t.TempDir()
	root, outside := filepath.Join(base, "root"), filepath.Join(base, "outside")
	for _, d := range []string{filepath.Join(root, "real"), outside} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(p, s string) {
		t.Helper()
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	link := func(target, name string) {
		t.Helper()
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(outside, "secret"), "outside content")
	write(filepath.Join(root, "real", "ok"), "inside")
	link(filepath.Join(outside, "secret"), "file-out")
	link(outside, "dir-out")
	link(filepath.Join(root, "real", "ok"), "file-in")
	link("real", "dir-in") // relative, inside
	store := NewLocalUnder([]string{root})
	key := func(rel string) string { return strings.TrimPrefix(filepath.Join(root, rel), "/") }

	refused := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, ErrOutsideRoot) {
			t.Errorf("%s: want ErrOutsideRoot, got %v", what, err)
		} else if strings.Contains(err.Error(), "outside content") {
			t.Errorf("%s: the error echoes the file: %v", what, err)
		}
	}
	for _, k := range []string{"file-out", "dir-out/secret"} {
		_, err := store.Open(ctx, key(k))
		refused("Open "+k, err)
		_, err = store.Stat(ctx, key(k))
		refused("Stat "+k, err)
	}
	_, err := (Opener{FileRoots: []string{root}}).Open(ctx, Location{Scheme: "file", Prefix: key("dir-out/cur")})
	refused("Opener.Open dir-out/cur", err)
	_, err = store.Folders(ctx, key("dir-out"))
	refused("Folders dir-out", err)
	_, err = store.List(ctx, key("dir-out")+"/")
	refused("List dir-out/", err)
	refused("Put dir-out/planted", store.Put(ctx, key("dir-out/planted"), strings.NewReader("x")))
	refused("Put dir-out/new/planted", store.Put(ctx, key("dir-out/new/planted"), strings.NewReader("x")))
	refused("Delete dir-out/secret", store.Delete(ctx, key("dir-out/secret")))
	if _, err := os.Stat(filepath.Join(outside, "planted")); !errors.Is(err, os.ErrNotExist) {
		t.Error("a file was written outside the root")
	}
	if _, err := os.Stat(filepath.Join(outside, "secret")); err != nil {
		t.Error("the file outside the root was removed")
	}
	// Writing a key that is itself a link replaces the link, never the
	// file it points to.
	if err := store.Put(ctx, key("file-out"), strings.NewReader("new")); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(outside, "secret")); string(b) != "outside content" {
		t.Fatal("a write through a link changed a file outside the root")
	}
	link(filepath.Join(outside, "secret"), "file-out2")

	// Inside links work.
	for _, k := range []string{"file-in", "dir-in/ok"} {
		rc, err := store.Open(ctx, key(k))
		if err != nil {
			t.Fatalf("Open %s: %v", k, err)
		}
		rc.Close()
	}
	if err := store.Put(ctx, key("dir-in/written"), strings.NewReader("w")); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "real", "written")); string(b) != "w" {
		t.Fatal("a write through an inside link did not land")
	}
	got, err := store.List(ctx, key("dir-in")+"/")
	if err != nil || len(got) != 2 {
		t.Fatalf("List dir-in/: %v %v", got, err)
	}

	// The whole root's listing: its files and the inside link to a file,
	// never the outside ones nor anything through dir-out.
	all, err := store.List(ctx, key("")+"/")
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, i := range all {
		keys = append(keys, strings.TrimPrefix(i.Key, key("")+"/"))
	}
	if want := []string{"file-in", "file-out", "real/ok", "real/written"}; strings.Join(keys, ",") != strings.Join(want, ",") {
		t.Fatalf("List: got %v, want %v", keys, want)
	}

	// A root configured through a link is where the link leads.
	via := filepath.Join(base, "via")
	if err := os.Symlink(root, via); err != nil {
		t.Fatal(err)
	}
	rc, err := NewLocalUnder([]string{via}).Open(ctx, strings.TrimPrefix(via, "/")+"/real/ok")
	if err != nil {
		t.Fatalf("a root through a link: %v", err)
	}
	rc.Close()
}
