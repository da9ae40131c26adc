package gateway

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

// KeyRing is the API keys file as the gateway sees it now: it is read
// again whenever the file changes (its size or modification time, checked
// on each request) or when Reload is called (the gateway command calls it
// on SIGHUP), so a key removed from the file is refused without a restart.
// A file that no longer loads keeps the keys last read, and Reload says
// why; the request path never sees a half-written file.
type KeyRing struct {
	path string

	mu    sync.Mutex
	keys  []APIKey
	stamp fileStamp
	// onError reports a reload that failed; the message names the file
	// and the problem, never its content.
	onError func(error)
}

type fileStamp struct {
	size int64
	mod  time.Time
}

// OpenKeyRing loads an API keys file; onError (may be nil) is told of
// later reloads that fail.
func OpenKeyRing(path string, onError func(error)) (*KeyRing, error) {
	r := &KeyRing{path: path, onError: onError}
	if err := r.Reload(); err != nil {
		return nil, err
	}
	return r, nil
}

// StaticKeys is a key ring that never changes.
func StaticKeys(keys []APIKey) *KeyRing { return &KeyRing{keys: keys} }

// Reload reads the keys file again. On error the previous keys stay.
func (r *KeyRing) Reload() error {
	if r.path == "" {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reloadLocked()
}

func (r *KeyRing) reloadLocked() error {
	st, err := stampOf(r.path)
	// Remembered even when the file does not load, so a broken file is
	// reported once, not on every request, until it changes again.
	r.stamp = st
	if err != nil {
		return fmt.Errorf("%w: %v", ErrKeysFile, err)
	}
	keys, err := LoadAPIKeys(r.path)
	if err != nil {
		return err
	}
	r.keys = keys
	return nil
}

// Keys returns the keys in force, reading the file again first when it
// changed since it was last read.
func (r *KeyRing) Keys() []APIKey {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.path == "" {
		return r.keys
	}
	if st, _ := stampOf(r.path); st != r.stamp {
		if err := r.reloadLocked(); err != nil && r.onError != nil {
			r.onError(err)
		}
	}
	return r.keys
}

func stampOf(path string) (fileStamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}, err
	}
	if !fi.Mode().IsRegular() {
		return fileStamp{}, errors.New(path + " is not a regular file")
	}
	return fileStamp{size: fi.Size(), mod: fi.ModTime()}, nil
}
