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
type Local struct{ root string }

// NewLocal returns a store rooted at dir.
func NewLocal(dir string) *Local { return &Local{root: dir} }

func (l *Local) String() string { return "file://" + l.root }

func (l *Local) path(key string) string { return filepath.Join(l.root, filepath.FromSlash(key)) }

func (l *Local) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	return l.OpenPinned(ctx, key, Pin{})
}

// OpenPinned checks the open file itself: Put replaces files by rename, so
// an open file keeps the version it checked.
func (l *Local) OpenPinned(_ context.Context, key string, pin Pin) (io.ReadCloser, error) {
	f, err := os.Open(l.path(key))
	switch {
	case errors.Is(err, fs.ErrNotExist) && !pin.IsZero():
		return nil, fmt.Errorf("%w: %s is gone", ErrChanged, l.path(key))
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("%w: %s", ErrNotFound, l.path(key))
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
		return nil, fmt.Errorf("%w: %s", ErrChanged, l.path(key))
	}
	return f, nil
}

func (l *Local) Stat(_ context.Context, key string) (Info, error) {
	st, err := os.Stat(l.path(key))
	if errors.Is(err, fs.ErrNotExist) {
		return Info{}, fmt.Errorf("%w: %s", ErrNotFound, l.path(key))
	}
	if errors.Is(err, fs.ErrPermission) {
		return Info{}, fmt.Errorf("%w: %s", ErrAccessDenied, err)
	}
	if err != nil {
		return Info{}, err
	}
	if st.IsDir() {
		return Info{}, fmt.Errorf("%w: %s is a folder", ErrNotFound, l.path(key))
	}
	return Info{Key: key, Size: st.Size(), LastModified: st.ModTime().UTC(), ETag: localETag(st)}, nil
}

// localETag stands in for an S3 ETag: it changes when the file is rewritten.
func localETag(st fs.FileInfo) string {
	sum := md5.Sum([]byte(fmt.Sprintf("%d-%d", st.Size(), st.ModTime().UnixNano())))
	return hex.EncodeToString(sum[:])
}

func (l *Local) Put(_ context.Context, key string, r io.Reader) error {
	p := l.path(key)
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
	entries, err := os.ReadDir(l.path(prefix))
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
	var out []Info
	err := filepath.WalkDir(l.path(dir), func(p string, d fs.DirEntry, err error) error {
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
	err := os.Remove(l.path(key))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}
