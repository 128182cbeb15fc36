package policy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Reloader keeps the policy in force and replaces it when the file changes. A valid new version is swapped in
// atomically; an invalid one is rejected and the last good policy stays in force.
//
// It watches the file's directory rather than the file, because a mounted ConfigMap changes by swapping a symlink
// (..data) and the file itself never sees a write; a slow poll backs the watch up for filesystems without events.
type Reloader struct {
	path    string
	now     func() time.Time
	onEvent func(ReloadEvent)

	current atomic.Pointer[Policy]

	mu sync.Mutex // serialises reloads and onEvent calls; status is only written under it
	// status is read without the lock, so that onEvent and readiness checks never wait for a reload (or deadlock
	// when onEvent asks for it).
	status atomic.Pointer[ReloadStatus]
	// seen is the file as the latest reload read it (through the symlinks), so that the poll can tell from a stat
	// alone that nothing changed, instead of reading and hashing the whole file every time.
	seen os.FileInfo
}

// ReloadEvent tells the caller what a reload attempt did, for logs and metrics.
type ReloadEvent struct {
	// Policy is the policy in force after the attempt.
	Policy *Policy
	// Changed is true when a new version was swapped in.
	Changed bool
	// Err is set when the file could not be read or is invalid; Policy is then the previous one.
	Err error
}

// ReloadStatus is the outcome of the latest reload attempt.
type ReloadStatus struct {
	LastAttempt time.Time
	// LastError is the error of the latest attempt, nil when it succeeded or found nothing new.
	LastError error
	// RejectedDigest identifies the content that was rejected, so the same bad file is not re-reported.
	RejectedDigest string
}

// NewReloader loads path once; it fails when that first load fails, since there is no last good policy to keep.
// onEvent (optional) is called after every reload attempt that changes something, fails, or clears an earlier
// failure. Calls are serialised; onEvent may call Current and Status, but not Reload.
func NewReloader(path string, onEvent func(ReloadEvent)) (*Reloader, error) {
	r := &Reloader{path: path, now: time.Now, onEvent: onEvent}
	r.seen, _ = os.Stat(path)
	p, err := Load(path)
	if err != nil {
		return nil, err
	}
	r.current.Store(p)
	r.status.Store(&ReloadStatus{LastAttempt: r.now()})
	return r, nil
}

// Current returns the policy in force. It never blocks and never returns nil.
func (r *Reloader) Current() *Policy { return r.current.Load() }

// Status returns the outcome of the latest reload attempt.
func (r *Reloader) Status() ReloadStatus { return *r.status.Load() }

// Reload reads the file now. Content identical to the policy in force, or to the last rejected content, is a no-op
// (reverting to the policy in force after a rejected edit clears the error, and onEvent hears so).
func (r *Reloader) Reload() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := *r.status.Load()
	st.LastAttempt = r.now()

	info, _ := os.Stat(r.path) // taken before reading: a change between the two is seen by the next poll
	data, err := os.ReadFile(r.path)
	if err != nil {
		err = fmt.Errorf("read policy %s: %w", r.path, err)
		r.fail(st, "", err)
		return err
	}
	r.seen = info
	sum := sha256.Sum256(data)
	digest := hex.EncodeToString(sum[:])
	old := r.current.Load()
	if digest == old.Digest {
		failed := st.LastError != nil
		st.LastError, st.RejectedDigest = nil, ""
		r.status.Store(&st)
		if failed {
			r.emit(ReloadEvent{Policy: old})
		}
		return nil
	}
	if digest == st.RejectedDigest {
		r.status.Store(&st)
		return st.LastError
	}
	p, err := Parse(r.path, data, st.LastAttempt)
	if err != nil {
		r.fail(st, digest, err)
		return err
	}
	r.current.Store(p)
	st.LastError, st.RejectedDigest = nil, ""
	r.status.Store(&st)
	r.emit(ReloadEvent{Policy: p, Changed: true})
	return nil
}

// statChanged says whether the file may differ from what the latest reload read: another file behind the path (a
// ConfigMap's symlink swap), another size or modification time, or a file that cannot be stat'ed.
func (r *Reloader) statChanged() bool {
	info, err := os.Stat(r.path)
	r.mu.Lock()
	defer r.mu.Unlock()
	seen := r.seen
	return err != nil || seen == nil || !os.SameFile(seen, info) || seen.Size() != info.Size() ||
		!seen.ModTime().Equal(info.ModTime())
}

func (r *Reloader) fail(st ReloadStatus, digest string, err error) {
	st.LastError, st.RejectedDigest = err, digest
	r.status.Store(&st)
	r.emit(ReloadEvent{Policy: r.current.Load(), Err: err})
}

func (r *Reloader) emit(e ReloadEvent) {
	if r.onEvent != nil {
		r.onEvent(e)
	}
}

// Watch reloads on every change in the file's directory until ctx ends. Bursts of events (an editor's save, a
// ConfigMap's symlink swap) are folded into one reload after debounce; poll re-reads the file regardless of events.
func (r *Reloader) Watch(ctx context.Context, debounce, poll time.Duration) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch policy %s: %w", r.path, err)
	}
	defer func() { _ = w.Close() }()
	if err := w.Add(filepath.Dir(r.path)); err != nil {
		return fmt.Errorf("watch policy directory %s: %w", filepath.Dir(r.path), err)
	}

	ticker := time.NewTicker(poll)
	defer ticker.Stop()
	pending := time.NewTimer(debounce)
	pending.Stop()
	defer pending.Stop()

	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			if ev.Has(fsnotify.Chmod) && !ev.Has(fsnotify.Write) {
				continue // atime and permission churn, never a content change
			}
			pending.Reset(debounce)
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			r.mu.Lock() // onEvent calls stay serialised
			r.emit(ReloadEvent{Policy: r.Current(), Err: fmt.Errorf("watch policy %s: %w", r.path, err)})
			r.mu.Unlock()
		case <-pending.C:
			_ = r.Reload() // reported through onEvent and Status
		case <-ticker.C:
			if !r.statChanged() {
				continue
			}
			_ = r.Reload()
		}
	}
}
