package webhook

import (
	"context"
	"testing"
	"time"
)

func TestFairShare(t *testing.T) {
	type step struct {
		client string
		n      int64
		want   bool // granted without waiting
	}
	tests := map[string]struct {
		size  int64
		steps []step
	}{
		"under half of the capacity, first come first served": {size: 100, steps: []step{
			{"a", 30, true}, {"b", 10, true}, {"a", 10, true},
		}},
		"a lone client holds at most half": {size: 100, steps: []step{
			{"a", 50, true}, {"a", 1, false},
		}},
		"a client that holds nothing may take what fits, past half": {size: 100, steps: []step{
			{"a", 50, true}, {"b", 40, true},
		}},
		"past half, a client keeps within an equal share with one kept for a newcomer": {size: 90, steps: []step{
			{"a", 45, true}, {"b", 20, true}, {"b", 10, true}, {"b", 1, false},
		}},
		"nothing past the capacity, whoever asks": {size: 100, steps: []step{
			{"a", 50, true}, {"b", 40, true}, {"c", 11, false}, {"c", 10, true},
		}},
		"the one large slot goes to whoever asks while it is free": {size: 1, steps: []step{
			{"a", 1, true}, {"b", 1, false}, {"a", 1, false},
		}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s := newFairShare(tc.size)
			for i, st := range tc.steps {
				if got := s.acquire(t.Context(), st.client, st.n, 0); got != st.want {
					t.Fatalf("step %d: %s takes %d: granted %v, want %v (used %d)", i, st.client, st.n, got, st.want,
						s.used)
				}
			}
		})
	}
}

// TestFairShareServesTheClientHoldingLeastFirst: when capacity comes back, a client that holds little is served
// before one that holds much, whoever asked first.
func TestFairShareServesTheClientHoldingLeastFirst(t *testing.T) {
	s := newFairShare(12)
	if !s.acquire(t.Context(), "heavy", 5, 0) || !s.acquire(t.Context(), "light", 1, 0) ||
		!s.acquire(t.Context(), "other", 6, 0) {
		t.Fatal("first takes refused")
	}
	heavy, light := make(chan bool, 1), make(chan bool, 1)
	go func() { heavy <- s.acquire(context.Background(), "heavy", 1, time.Minute) }()
	waitUntil(t, func() bool { return waitingFor(s, "heavy") == 1 })
	go func() { light <- s.acquire(context.Background(), "light", 1, time.Minute) }()
	waitUntil(t, func() bool { return waitingFor(s, "light") == 1 })
	s.release("other", 6)
	if !<-light {
		t.Fatal("light was not served")
	}
	select {
	case <-heavy:
		t.Fatal("heavy, over its share, was served next to light")
	default:
	}
	s.release("light", 2)
	if !<-heavy {
		t.Fatal("heavy was not served once it was alone")
	}
}

// TestFairShareWaiterThatGivesUpHoldsNothing: a request that times out waiting leaves the counts as they were.
func TestFairShareWaiterThatGivesUpHoldsNothing(t *testing.T) {
	s := newFairShare(2)
	if !s.acquire(t.Context(), "a", 1, 0) || s.acquire(t.Context(), "a", 1, 10*time.Millisecond) {
		t.Fatal("want the first granted and the second (over a lone client's half) refused")
	}
	s.release("a", 1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.used != 0 || s.active != 0 || s.waiting != 0 {
		t.Errorf("used %d, active %d, waiting %d after everything was given back", s.used, s.active, s.waiting)
	}
}

func waitingFor(s *fairShare, client string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.clients[client]; c != nil {
		return len(c.queue)
	}
	return 0
}

// waitUntil polls cond for up to 10 s.
func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(time.Millisecond)
	}
}
