package daemon

import (
	"time"

	"github.com/weir-go/weir/server/dashboard"
)

// newDashboard builds the dashboard: top keys unless --no-top-keys, read
// only with the admin scope of the API's tokens.
func (s *Server) newDashboard() *dashboard.Dashboard {
	return dashboard.New(s.svc, s.m, dashboard.Options{Auth: s.auth, TopKeys: !s.o.NoTopKeys, Store: storeKind(s.storeURL)})
}

// notePing shows a ping of the store on the dashboard, once it exists
// (the first ping, in openService, comes before it).
func (s *Server) notePing(start time.Time, took time.Duration, err error) {
	if s.dash != nil {
		s.dash.RecordPing(start, took, err)
	}
}
