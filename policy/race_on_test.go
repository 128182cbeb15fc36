//go:build race

package policy

// raceEnabled: the race detector slows parsing tenfold, so the largest property tests take fewer cases.
const raceEnabled = true
