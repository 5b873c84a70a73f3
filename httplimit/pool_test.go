package httplimit

import (
	"net/http"
	"sync"
	"testing"

)

// jobLedger checks that every job ends up somewhere exactly once.
type jobLedger struct {
	mu    sync.Mutex
	done  map[int64]int
	codes map[int]int
}

func newLedger() *jobLedger { return &jobLedger{done: map[int64]int{}, codes: map[int]int{}} }

func (l *jobLedger) record(j *Job, resp *http.Response, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.done[j.ID]++
	if err != nil {
		l.codes[-1]++
		return
	}
	l.codes[resp.StatusCode]++
}

func makeJobs(t *testing.T, n int) chan *Job {
	jobs := make(chan *Job, n)
	for i := range n {
		req, err := http.NewRequest("GET", "http://api.example/item", nil)
		if err != nil {
			t.Fatal(err)
		}
		jobs <- &Job{ID: int64(i), Request: req}
	}
	close(jobs)
	return jobs
}

// verifyNothingLost checks that each of n jobs was finished once, or
// returned unfinished, or is still in the channel.
func verifyNothingLost(t *testing.T, n int, l *jobLedger, undone []*Job, jobs chan *Job) {
	t.Helper()
	seen := map[int64]int{}
	for id, c := range l.done {
		seen[id] += c
	}
	for _, j := range undone {
		seen[j.ID]++
	}
	for j := range jobs {
		seen[j.ID]++
	}
	for i := range int64(n) {
		if seen[i] != 1 {
			t.Fatalf("job %d accounted for %d times, want 1", i, seen[i])
		}
	}
	if len(seen) != n {
		t.Fatalf("%d jobs accounted for, want %d", len(seen), n)
	}
}

