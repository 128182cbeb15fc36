package policy

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// eventually polls cond until it holds, failing the test when the deadline passes first.
func eventually(t *testing.T, timeout time.Duration, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", timeout, what)
		}
		<-tick.C
	}
}

// recorder collects reload events; it is safe for concurrent use.
type recorder struct {
	mu     sync.Mutex
	events []ReloadEvent
}

func (r *recorder) record(e ReloadEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func (r *recorder) all() []ReloadEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]ReloadEvent(nil), r.events...)
}

// versioned is a valid policy whose metadata.name and only identity's role name are version.
func versioned(version string) string {
	return doc(append([]string{"apiVersion: fluxidentity.dev/v1alpha1", "kind: IdentityPolicy",
		"metadata: {name: " + version + "}", "identities:"},
		entry(version, "[flux-system]", "[source-controller]")...)...)
}

// invalid is a policy with an unknown field; tag makes distinct contents.
func invalid(tag string) string {
	return versioned("v0") + "# " + tag + "\nspec: {}\n"
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func newTestReloader(t *testing.T, content string) (*Reloader, string, *recorder) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "policy.yaml")
	writeFile(t, path, content)
	rec := &recorder{}
	r, err := NewReloader(path, rec.record)
	if err != nil {
		t.Fatalf("NewReloader: %v", err)
	}
	return r, path, rec
}

func TestNewReloaderNeedsAGoodPolicy(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	writeFile(t, bad, invalid("x"))
	var le *LoadError
	if _, err := NewReloader(bad, nil); !errors.As(err, &le) {
		t.Errorf("NewReloader of an invalid file: %v, want a *LoadError", err)
	}
	if _, err := NewReloader(filepath.Join(dir, "missing.yaml"), nil); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("NewReloader of a missing file: %v, want not-exist", err)
	}
}

func TestReloaderSwapsInAValidChange(t *testing.T) {
	r, path, rec := newTestReloader(t, versioned("v1"))
	if got := r.Current().Name; got != "v1" {
		t.Fatalf("Current().Name = %q, want v1", got)
	}
	writeFile(t, path, versioned("v2"))
	if err := r.Reload(); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	p := r.Current()
	if p.Name != "v2" {
		t.Errorf("Current().Name = %q after a valid change, want v2", p.Name)
	}
	if m, ok := p.IdentityFor("flux-system", "source-controller"); !ok || m.Identity.Name != "v2" {
		t.Errorf("the new policy answers %+v, %v", m, ok)
	}
	events := rec.all()
	if len(events) != 1 || !events[0].Changed || events[0].Err != nil || events[0].Policy != p {
		t.Errorf("events = %+v, want one Changed event carrying the new policy", events)
	}
	if st := r.Status(); st.LastError != nil || st.RejectedDigest != "" || st.LastAttempt.IsZero() {
		t.Errorf("Status() = %+v, want a clean attempt", st)
	}
}

func TestReloaderIgnoresUnchangedContent(t *testing.T) {
	r, _, rec := newTestReloader(t, versioned("v1"))
	before := r.Current()
	for range 3 {
		if err := r.Reload(); err != nil {
			t.Fatalf("Reload: %v", err)
		}
	}
	if r.Current() != before {
		t.Error("reloading unchanged content replaced the policy")
	}
	if events := rec.all(); len(events) != 0 {
		t.Errorf("events = %+v, want none", events)
	}
}

func TestReloaderKeepsTheLastGoodPolicy(t *testing.T) {
	r, path, rec := newTestReloader(t, versioned("v1"))
	good := r.Current()

	writeFile(t, path, invalid("first"))
	err := r.Reload()
	var le *LoadError
	if !errors.As(err, &le) {
		t.Fatalf("Reload of an invalid file: %v, want a *LoadError", err)
	}
	if r.Current() != good {
		t.Error("an invalid change replaced the policy in force")
	}
	st := r.Status()
	if !errors.Is(st.LastError, err) || st.RejectedDigest == "" {
		t.Errorf("Status() = %+v, want the load error and the rejected digest", st)
	}
	events := rec.all()
	if len(events) != 1 || !errors.Is(events[0].Err, err) || events[0].Changed || events[0].Policy != good {
		t.Fatalf("events = %+v, want one error event carrying the last good policy", events)
	}

	t.Run("the same bad content is not re-reported", func(t *testing.T) {
		for range 3 {
			if again := r.Reload(); !errors.Is(again, err) {
				t.Errorf("Reload of the same bad content = %v, want the same error", again)
			}
		}
		if n := len(rec.all()); n != 1 {
			t.Errorf("%d events, want still 1", n)
		}
		if !errors.Is(r.Status().LastError, err) {
			t.Error("the error was cleared")
		}
	})

	t.Run("different bad content is reported", func(t *testing.T) {
		writeFile(t, path, invalid("second"))
		if err := r.Reload(); err == nil {
			t.Fatal("Reload accepted an invalid file")
		}
		if events := rec.all(); len(events) != 2 || events[1].Err == nil {
			t.Errorf("events = %+v, want a second error event", events)
		}
		if r.Current() != good {
			t.Error("an invalid change replaced the policy in force")
		}
	})

	t.Run("a later valid version recovers", func(t *testing.T) {
		writeFile(t, path, versioned("v3"))
		if err := r.Reload(); err != nil {
			t.Fatalf("Reload: %v", err)
		}
		if r.Current().Name != "v3" {
			t.Errorf("Current().Name = %q, want v3", r.Current().Name)
		}
		if st := r.Status(); st.LastError != nil || st.RejectedDigest != "" {
			t.Errorf("Status() = %+v, want the error cleared", st)
		}
		if events := rec.all(); len(events) != 3 || !events[2].Changed || events[2].Err != nil {
			t.Errorf("events = %+v, want a third, Changed event", events)
		}
	})
}

func TestReloaderRevertingABadEditClearsTheError(t *testing.T) {
	r, path, rec := newTestReloader(t, versioned("v1"))
	good := r.Current()
	writeFile(t, path, invalid("typo"))
	if err := r.Reload(); err == nil {
		t.Fatal("Reload accepted an invalid file")
	}
	writeFile(t, path, versioned("v1"))
	if err := r.Reload(); err != nil {
		t.Fatalf("Reload of the reverted file: %v", err)
	}
	if r.Current() != good {
		t.Error("reverting to the content in force replaced the policy")
	}
	if st := r.Status(); st.LastError != nil || st.RejectedDigest != "" {
		t.Errorf("Status() = %+v, want the error cleared", st)
	}
	// Whoever turned the error into a metric or a log line must hear that it is gone.
	events := rec.all()
	if len(events) != 2 || events[1].Err != nil || events[1].Changed || events[1].Policy != good {
		t.Errorf("events = %+v, want an error event and then a clean one carrying the policy in force", events)
	}
}

func TestReloaderReportsAMissingFile(t *testing.T) {
	r, path, rec := newTestReloader(t, versioned("v1"))
	good := r.Current()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	err := r.Reload()
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Reload of a missing file: %v, want not-exist", err)
	}
	if r.Current() != good || !errors.Is(r.Status().LastError, err) {
		t.Errorf("Current changed or Status().LastError = %v", r.Status().LastError)
	}
	if events := rec.all(); len(events) != 1 || !errors.Is(events[0].Err, err) {
		t.Errorf("events = %+v, want one error event", events)
	}
}

// TestReloaderOnEventMayAskForStatus: the callback typically logs, updates metrics and readiness detail from the
// reloader itself; it must not deadlock doing so.
func TestReloaderOnEventMayAskForStatus(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policy.yaml")
	writeFile(t, path, versioned("v1"))
	var r *Reloader
	var seen []error
	r, err := NewReloader(path, func(e ReloadEvent) {
		seen = append(seen, r.Status().LastError)
		_ = r.Current()
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, content := range []string{invalid("x"), versioned("v2")} {
		writeFile(t, path, content)
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = r.Reload()
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("Reload did not return: onEvent calling Status() deadlocks")
		}
	}
	if len(seen) != 2 || seen[0] == nil || seen[1] != nil {
		t.Errorf("Status().LastError seen from onEvent = %v, want the error and then nil", seen)
	}
}

// configMapDir lays out a directory the way the kubelet mounts a ConfigMap: dir/..TIMESTAMP/policy.yaml holds the
// content, dir/..data links to the timestamped directory and dir/policy.yaml links to ..data/policy.yaml.
type configMapDir struct {
	t   *testing.T
	dir string
	n   int
}

func newConfigMapDir(t *testing.T, content string) *configMapDir {
	c := &configMapDir{t: t, dir: t.TempDir()}
	target := c.version(content)
	if err := os.Symlink(target, filepath.Join(c.dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join("..data", "policy.yaml"), c.path()); err != nil {
		t.Fatal(err)
	}
	return c
}

func (c *configMapDir) path() string { return filepath.Join(c.dir, "policy.yaml") }

// version writes content into a new timestamped directory and returns its name.
func (c *configMapDir) version(content string) string {
	c.n++
	name := fmt.Sprintf("..2026_06_15_12_00_%02d.%d", c.n, 1000+c.n)
	if err := os.Mkdir(filepath.Join(c.dir, name), 0o755); err != nil {
		c.t.Fatal(err)
	}
	writeFile(c.t, filepath.Join(c.dir, name, "policy.yaml"), content)
	return name
}

// swap publishes content as the kubelet does: a new timestamped directory, a temporary link to it, and an atomic
// rename of that link over ..data. The old directory is removed afterwards.
func (c *configMapDir) swap(content string) {
	old, err := os.Readlink(filepath.Join(c.dir, "..data"))
	if err != nil {
		c.t.Fatal(err)
	}
	target := c.version(content)
	tmp := filepath.Join(c.dir, "..data_tmp")
	if err := os.Symlink(target, tmp); err != nil {
		c.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(c.dir, "..data")); err != nil {
		c.t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(c.dir, old)); err != nil {
		c.t.Fatal(err)
	}
}

func TestReloaderWatchFollowsAConfigMapSymlinkSwap(t *testing.T) {
	cm := newConfigMapDir(t, versioned("v1"))
	rec := &recorder{}
	r, err := NewReloader(cm.path(), rec.record)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	watchErr := make(chan error, 1)
	go func() { watchErr <- r.Watch(ctx, 10*time.Millisecond, time.Hour) }() // the poll never fires in this test
	defer func() {
		cancel()
		if err := <-watchErr; err != nil {
			t.Errorf("Watch: %v", err)
		}
	}()

	// Wait until the watch is live: touching the directory must lead to a (no-op) reload attempt. The probe is
	// written again every 100ms, slower than the debounce, until the watch has been set up and reacts.
	start := r.Status().LastAttempt
	probe := filepath.Join(cm.dir, "probe")
	var touched time.Time
	eventually(t, 10*time.Second, func() bool {
		if time.Since(touched) > 100*time.Millisecond {
			writeFile(t, probe, time.Now().String())
			touched = time.Now()
		}
		return r.Status().LastAttempt.After(start)
	}, "the watch never reacted to a change in the directory")
	if err := os.Remove(probe); err != nil {
		t.Fatal(err)
	}

	cm.swap(versioned("v2"))
	eventually(t, 10*time.Second, func() bool { return r.Current().Name == "v2" },
		"the symlink swap to v2 was not picked up")

	cm.swap(invalid("bad"))
	eventually(t, 10*time.Second, func() bool { return r.Status().LastError != nil },
		"the invalid version was not reported")
	if r.Current().Name != "v2" {
		t.Errorf("Current().Name = %q after an invalid swap, want v2", r.Current().Name)
	}

	cm.swap(versioned("v3"))
	eventually(t, 10*time.Second, func() bool { return r.Current().Name == "v3" && r.Status().LastError == nil },
		"the valid version after the invalid one was not picked up")

	var changed, failed int
	for _, e := range rec.all() {
		if e.Changed {
			changed++
		}
		if e.Err != nil {
			failed++
		}
	}
	if changed != 2 || failed != 1 {
		t.Errorf("%d changed and %d failed events, want 2 and 1 (the same bad content is reported once)", changed, failed)
	}
}

func TestReloaderWatchPollsWithoutEvents(t *testing.T) {
	r, path, _ := newTestReloader(t, versioned("v1"))
	ctx, cancel := context.WithCancel(t.Context())
	watchErr := make(chan error, 1)
	go func() { watchErr <- r.Watch(ctx, time.Hour, 20*time.Millisecond) }() // events are debounced for an hour
	writeFile(t, path, versioned("v2"))
	eventually(t, 10*time.Second, func() bool { return r.Current().Name == "v2" }, "the poll did not pick up v2")
	cancel()
	if err := <-watchErr; err != nil {
		t.Errorf("Watch: %v", err)
	}
}

func TestReloaderWatchFailsOnAMissingDirectory(t *testing.T) {
	r, path, _ := newTestReloader(t, versioned("v1"))
	if err := os.RemoveAll(filepath.Dir(path)); err != nil {
		t.Fatal(err)
	}
	if err := r.Watch(t.Context(), time.Millisecond, time.Hour); err == nil {
		t.Error("Watch of a removed directory returned nil")
	}
}

// TestReloaderCurrentDuringReloads is meant for -race: readers never see a nil or half-built policy while the file
// flips between two versions.
func TestReloaderCurrentDuringReloads(t *testing.T) {
	r, path, _ := newTestReloader(t, versioned("v1"))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				p := r.Current()
				if p == nil {
					errs <- errors.New("Current() returned nil")
					return
				}
				m, ok := p.IdentityFor("flux-system", "source-controller")
				if !ok || m.Identity.Name != p.Name || m.RoleARN != "arn:aws:iam::111122223333:role/"+p.Name {
					errs <- fmt.Errorf("policy %s answered %+v, %v", p.Name, m, ok)
					return
				}
				_, _ = p.Ownership("flux-system")
				_ = p.MandatesFor("flux-system", "GitRepository")
				_ = r.Status()
			}
		}()
	}
	for i := range 200 {
		content := versioned(fmt.Sprintf("v%d", i%2+1))
		if i%7 == 0 {
			content = invalid(fmt.Sprint(i))
		}
		writeFile(t, path, content)
		_ = r.Reload()
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// The poll reads the file only when a stat says it may have changed: the same file, size and modification time are
// not read again.
func TestReloaderPollStatsBeforeReading(t *testing.T) {
	r, path, _ := newTestReloader(t, versioned("v1"))
	if r.statChanged() {
		t.Fatal("the file just loaded looks changed")
	}
	writeFile(t, path, versioned("v2"))
	later := time.Now().Add(time.Hour) // a write may land within the file system's timestamp granularity
	if err := os.Chtimes(path, later, later); err != nil {
		t.Fatal(err)
	}
	if !r.statChanged() {
		t.Fatal("a rewritten file looks unchanged")
	}
	if err := r.Reload(); err != nil || r.Current().Name != "v2" {
		t.Fatalf("reload: %v, policy %s", err, r.Current().Name)
	}
	if r.statChanged() {
		t.Error("the file just reloaded looks changed")
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if !r.statChanged() {
		t.Error("a removed file looks unchanged: the poll would never report it")
	}
}
