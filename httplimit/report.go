package httplimit

import "time"

// reportUntil starts calling p.Report every p.ReportEvery, if Report is
// set, and returns the function that stops it and makes the last call.
func (p *Pool) reportUntil() (stop func()) {
	if p.Report == nil {
		return func() {}
	}
	every := p.ReportEvery
	if every <= 0 {
		every = time.Second
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
				p.Report(p.Stats())
			case <-done:
				p.Report(p.Stats())
				return
			}
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}
