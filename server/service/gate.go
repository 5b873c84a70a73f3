package service

import "errors"

// ErrOverloaded is returned when a Gate is full: the request is shed at
// once (503 / RESOURCE_EXHAUSTED) rather than queued past its deadline.
var ErrOverloaded = errors.New("weir: server overloaded: too many requests in flight")

// A Gate bounds the decision requests in flight across every API (R23).
// The nil Gate admits everything.
type Gate struct{ sem chan struct{} }

// NewGate returns a gate admitting n requests at once; n <= 0 means no
// bound (a nil Gate).
func NewGate(n int) *Gate {
	if n <= 0 {
		return nil
	}
	return &Gate{sem: make(chan struct{}, n)}
}

// Enter takes a place without waiting; it reports false when full.
func (g *Gate) Enter() bool {
	if g == nil {
		return true
	}
	select {
	case g.sem <- struct{}{}:
		return true
	default:
		return false
	}
}

// Leave gives back a place taken by Enter.
func (g *Gate) Leave() {
	if g != nil {
		<-g.sem
	}
}
