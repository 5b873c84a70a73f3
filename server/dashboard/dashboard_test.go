package dashboard

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/weir-go/weir/memstore"
	"github.com/weir-go/weir/server/config"
	"github.com/weir-go/weir/server/metrics"
	"github.com/weir-go/weir/server/service"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestDashboard(t *testing.T) {
	cfg, err := config.Parse("t.yaml", []byte("policies:\n  api: {limits: [\"1/m\"], description: \"<b>bold</b>\"}\n"))
	if err != nil {
		t.Fatal(err)
	}
	store := memstore.New()
	defer store.Close()
	m := metrics.New()
	svc, err := service.New(store, nil, cfg, m)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		svc.Check(context.Background(), &service.Request{Policy: "api", Key: "secret-key", Cost: 1})
	}
	d := New(svc, m)

	w := httptest.NewRecorder()
	d.ServeHTTP(w, httptest.NewRequest("GET", "/dashboard", nil))
	page := w.Body.String()
	if w.Code != 200 || !strings.Contains(page, `id="p-api"`) || !strings.Contains(page, "&lt;b&gt;bold") {
		t.Errorf("page: %d, escaped description missing:\n%s", w.Code, page)
	}

	// A closed dashboard sends one event and ends the stream.
	d.Close()
	w = httptest.NewRecorder()
	d.ServeHTTP(w, httptest.NewRequest("GET", "/dashboard/events", nil))
	ev := w.Body.String()
	if w.Header().Get("Content-Type") != "text/event-stream" || !strings.HasPrefix(ev, "data: {") ||
		!strings.Contains(ev, `"api":{`) || !strings.Contains(ev, `"allowed":1`) || !strings.Contains(ev, `"limited":2`) {
		t.Errorf("event: %q", ev)
	}
	if strings.Contains(ev, "secret-key") || strings.Contains(page, "secret-key") {
		t.Error("the dashboard shows a caller's key")
	}
}
