package blob

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Local is a Store on a folder of the local file system.
type Local struct {
	root string
	// confined, when set, holds the only folders keys may resolve into
	// (cleaned, absolute); NewLocalUnder sets it.
	confined []string
}

// NewLocal returns a store rooted at dir.
func NewLocal(dir string) *Local { return &Local{root: dir} }

// NewLocalUnder returns a store rooted at "/", as file:// URLs name
// files, whose keys must resolve into one of roots (none: no key does).
// A key that climbs out with ".." is refused too.
func NewLocalUnder(roots []string) *Local {
	l := &Local{root: "/", confined: []string{}}
	for _, r := range roots {
		if r = filepath.Clean(r); filepath.IsAbs(r) {
			l.confined = append(l.confined, r)
		}
	}
	return l
}

func (l *Local) String() string { return "file://" + l.root }

// resolve returns the file of a key, or ErrOutsideRoot for a confined
// store's key outside its roots.
func (l *Local) resolve(key string) (string, error) {
	p := filepath.Join(l.root, filepath.FromSlash(key))
	if l.confined == nil {
		return p, nil
	}
	for _, r := range l.confined {
		if p == r || strings.HasPrefix(p, r+string(filepath.Separator)) || r == string(filepath.Separator) {
			return p, nil
		}
	}
	roots := "none are configured (--file-roots)"
	if len(l.confined) > 0 {
		roots = "they are " + strings.Join(l.confined, ", ")
	}
	return "", fmt.Errorf("%w: %s is not under the worker's local folders; %s", ErrOutsideRoot, p, roots)
}

func (l *Local) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	return l.OpenPinned(ctx, key, Pin{})
}

// OpenPinned checks the open file itself: Put replaces files by rename, so
// an open file keeps the version it checked.
func (l *Local) OpenPinned(_ context.Context, key string, pin Pin) (io.ReadCloser, error) {
	p, err := l.resolve(key)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	switch {
	case errors.Is(err, fs.ErrNotExist) && !pin.IsZero():
		return nil, fmt.Errorf("%w: %s is gone", ErrChanged, p)
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("%w: %s", ErrNotFound, p)
	case errors.Is(err, fs.ErrPermission):
		return nil, fmt.Errorf("%w: %s", ErrAccessDenied, err)
	case err != nil:
		return nil, err
	}
	if pin.IsZero() {
		return f, nil
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if st.Size() != pin.Size || (pin.ETag != "" && localETag(st) != pin.ETag) {
		f.Close()
		return nil, fmt.Errorf("%w: %s", ErrChanged, p)
	}
	return f, nil
}

func (l *Local) Stat(_ context.Context, key string) (Info, error) {
	p, err := l.resolve(key)
	if err != nil {
		return Info{}, err
	}
	st, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return Info{}, fmt.Errorf("%w: %s", ErrNotFound, p)
	}
	if errors.Is(err, fs.ErrPermission) {
		return Info{}, fmt.Errorf("%w: %s", ErrAccessDenied, err)
	}
	if err != nil {
		return Info{}, err
	}
	if st.IsDir() {
		return Info{}, fmt.Errorf("%w: %s is a folder", ErrNotFound, p)
	}
	return Info{Key: key, Size: st.Size(), LastModified: st.ModTime().UTC(), ETag: localETag(st)}, nil
}

// localETag stands in for an S3 ETag: it changes when the file is rewritten.
func localETag(st fs.FileInfo) string {
	sum := md5.Sum([]byte(fmt.Sprintf("%d-%d", st.Size(), st.ModTime().UnixNano())))
	return hex.EncodeToString(sum[:])
}

func (l *Local) Put(_ context.Context, key string, r io.Reader) error {
	p, err := l.resolve(key)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	// Write beside the target and rename, so readers never see half a file.
	tmp, err := os.CreateTemp(filepath.Dir(p), ".put-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, r); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), p)
}

func (l *Local) Folders(_ context.Context, prefix string) ([]string, error) {
	p, err := l.resolve(prefix)
	if err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	return out, nil // ReadDir sorts by name
}

func (l *Local) List(_ context.Context, prefix string) ([]Info, error) {
	// Walk from the deepest folder the prefix names, then filter by prefix.
	dir := prefix
	if i := strings.LastIndex(prefix, "/"); i >= 0 {
		dir = prefix[:i]
	} else {
		dir = ""
	}
	start, err := l.resolve(dir)
	if err != nil {
		return nil, err
	}
	var out []Info
	err = filepath.WalkDir(start, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.IsDir() || strings.HasPrefix(d.Name(), ".put-") {
			return nil
		}
		rel, err := filepath.Rel(l.root, p)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if !strings.HasPrefix(key, prefix) {
			return nil
		}
		st, err := d.Info()
		if err != nil {
			return err
		}
		out = append(out, Info{Key: key, Size: st.Size(), LastModified: st.ModTime().UTC(), ETag: localETag(st)})
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, err
}

func (l *Local) Delete(_ context.Context, key string) error {
	p, err := l.resolve(key)
	if err != nil {
		return err
	}
	err = os.Remove(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}
