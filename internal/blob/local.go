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
	"syscall"
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
	return "", fmt.Errorf("%w: %s is not under the worker's local folders; %s", ErrOutsideRoot, p, l.rootsText())
}

func (l *Local) rootsText() string {
	if len(l.confined) == 0 {
		return "none are configured (--file-roots)"
	}
	return "they are " + strings.Join(l.confined, ", ")
}

// resolveReal is resolve, then, for a confined store, the same refusal
// when a symbolic link on the existing part of the path leads out of
// every root. Writes and deletes pass parent, checking the folder they
// write in (a final link is replaced or removed, never followed).
func (l *Local) resolveReal(key string, parent bool) (string, error) {
	p, err := l.resolve(key)
	if err != nil || l.confined == nil {
		return p, err
	}
	check := p
	if parent {
		check = filepath.Dir(p)
	}
	if !l.realInside(check) {
		return "", fmt.Errorf("%w: %s leads through a symbolic link out of the worker's local folders; %s", ErrOutsideRoot, p, l.rootsText())
	}
	return p, nil
}

// realInside reports whether p, its symbolic links resolved, is in one of
// the roots, themselves resolved (a root may be reached through a link).
// Only the existing part of p can hold links; the rest is appended as is.
func (l *Local) realInside(p string) bool {
	real := realPath(p)
	for _, r := range l.confined {
		if r == string(filepath.Separator) {
			return true
		}
		rr := realPath(r)
		if real == rr || strings.HasPrefix(real, rr+string(filepath.Separator)) {
			return true
		}
	}
	return false
}

// realPath is filepath.EvalSymlinks of the longest existing part of the
// absolute, clean path p, joined with the part that does not exist yet.
func realPath(p string) string {
	rest := ""
	for {
		real, err := filepath.EvalSymlinks(p)
		if err == nil {
			return filepath.Join(real, rest)
		}
		parent := filepath.Dir(p)
		if parent == p {
			return filepath.Join(p, rest)
		}
		rest = filepath.Join(filepath.Base(p), rest)
		p = parent
	}
}

func (l *Local) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	return l.OpenPinned(ctx, key, Pin{})
}

// OpenPinned checks the open file itself: Put replaces files by rename, so
// an open file keeps the version it checked.
func (l *Local) OpenPinned(_ context.Context, key string, pin Pin) (io.ReadCloser, error) {
	p, err := l.resolveReal(key, false)
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
	p, err := l.resolveReal(key, false)
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
	p, err := l.resolveReal(key, true)
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
	p, err := l.resolveReal(prefix, false)
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
	start, err := l.resolveReal(dir, false)
	if err != nil {
		return nil, err
	}
	var out []Info
	// The trailing separator has WalkDir follow a start folder that is a
	// link (resolveReal checked where it leads); links below it are not
	// descended through.
	err = filepath.WalkDir(start+string(filepath.Separator), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
				return nil // no such folder (or a file): nothing under it
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
		if d.Type()&fs.ModeSymlink != 0 {
			// WalkDir never descends through a link; a link to a file
			// is listed as that file, unless it leads out of the roots
			// (Open would refuse it) or nowhere.
			if l.confined != nil && !l.realInside(p) {
				return nil
			}
			if st, err = os.Stat(p); err != nil || st.IsDir() {
				return nil
			}
		}
		out = append(out, Info{Key: key, Size: st.Size(), LastModified: st.ModTime().UTC(), ETag: localETag(st)})
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, err
}

func (l *Local) Delete(_ context.Context, key string) error {
	p, err := l.resolveReal(key, true)
	if err != nil {
		return err
	}
	err = os.Remove(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}
