package service

// A KeyCounter is told the key of every decision the service makes for
// the native HTTP and gRPC APIs (Check and Acquire; Envoy descriptors are
// not included): the policy's name, the key as the policy's template
// rendered it, and whether the policy denied it (shadow-limited
// included). It backs the dashboard's top keys; it must be safe for
// concurrent use and quick, and it must not keep per-key state without a
// bound (package topk keeps a bounded sketch).
type KeyCounter interface {
	Count(policy, key string, denied bool)
}

// SetKeyCounter makes k see the key of every decision (nil: none, the
// default, which costs one nil check per decision). Call it before
// serving.
func (s *Service) SetKeyCounter(k KeyCounter) { s.keys = k }

// countKey tells the key counter, if any, about a decision.
func (s *Service) countKey(p *policy, key string, r *Result) {
	if s.keys != nil {
		s.keys.Count(p.cfg.Name, key, !r.Allowed || r.Shadowed)
	}
}
