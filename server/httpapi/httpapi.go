package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/weir-go/weir"
	"github.com/weir-go/weir/server/lograte"
	"github.com/weir-go/weir/server/service"
)

// Request body limits (S4).
const (
	// MaxBodyBytes is the largest body of a single-object request
	// (acquire, release, reset) and of Envoy's POST /json.
	MaxBodyBytes = 64 << 10
	// MaxBatchBodyBytes is the largest body of POST /v1/check, which may
	// carry a batch of up to service.MaxBatch (1000) checks: 256 KiB, the
	// gRPC API's message limit, so a batch that fits one API fits the
	// other, and 1000 checks have 262 bytes each (a 40-byte key with two
	// fields takes about 110).
	MaxBatchBodyBytes = 256 << 10
)

// Options configure the handler.
type Options struct {
	Service *service.Service
	// Auth checks bearer tokens; nil or empty means no authentication.
	Auth *service.Auth
	// Ready reports whether the server should receive traffic (nil: ready).
	Ready func(ctx context.Context) error
	// Reload reloads the configuration (admin); nil disables /v1/reload.
	Reload func(ctx context.Context) error
	// Envoy serves envoyproxy/ratelimit's POST /json; nil disables it.
	Envoy http.Handler
	// Dashboard, when set, is served under /dashboard (decision scope). If
	// it has a ServeLocked method, GET /dashboard without a valid token is
	// served by it (a page without data that asks for a token) instead of
	// the JSON 401.
	Dashboard http.Handler
	// MetricsAuth, when set, protects GET /metrics: a scrape needs a token
	// it grants (any scope). Nil leaves /metrics open.
	MetricsAuth *service.Auth
	// StoreLog receives store failures, logged as state changes and
	// periodic summaries (nil: one built on Logger).
	StoreLog *lograte.Store
	// Gate bounds the requests in flight; a full gate sheds with 503.
	Gate *service.Gate
	// Logger receives errors; nil means slog.Default().
	Logger *slog.Logger
}

type api struct {
	Options
	reqs  *prometheus.CounterVec
	codes sync.Map // [2]string{pattern, code} -> prometheus.Counter
}

// New returns the HTTP handler.
func New(o Options) http.Handler {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.StoreLog == nil {
		o.StoreLog = lograte.NewStore(o.Logger, 0, nil)
	}
	a := &api{Options: o, reqs: o.Service.Metrics().Requests}
	mux := http.NewServeMux()
	mux.Handle("POST /v1/check", a.guard(service.ScopeDecide, a.check))
	mux.Handle("POST /v1/acquire", a.guard(service.ScopeDecide, a.acquire))
	mux.Handle("POST /v1/release", a.guard(service.ScopeDecide, a.release))
	mux.Handle("POST /v1/report", a.guard(service.ScopeDecide, a.report))
	mux.Handle("GET /v1/policies", a.guard(service.ScopeDecide, a.policies))
	mux.Handle("POST /v1/reset", a.guard(service.ScopeAdmin, a.reset))
	mux.Handle("POST /v1/reload", a.guard(service.ScopeAdmin, a.reload))
	mux.Handle("POST /v1/override", a.guard(service.ScopeAdmin, a.setOverride))
	mux.Handle("POST /v1/override/get", a.guard(service.ScopeAdmin, a.getOverride))
	mux.Handle("POST /v1/override/delete", a.guard(service.ScopeAdmin, a.deleteOverride))
	mux.Handle("GET /v1/overrides", a.guard(service.ScopeAdmin, a.listOverrides))
	mux.HandleFunc("GET /livez", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /readyz", a.readyz)
	mux.HandleFunc("GET /healthz", a.readyz)
	mux.HandleFunc("GET /healthcheck", a.readyz)
	var prom http.Handler = promhttp.HandlerFor(o.Service.Metrics().Registry, promhttp.HandlerOpts{})
	if o.MetricsAuth != nil && o.MetricsAuth.Enabled() {
		open := prom
		prom = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if o.MetricsAuth.Scope(r.Header.Get("Authorization")) == service.ScopeNone {
				w.Header().Set("WWW-Authenticate", `Bearer realm="weir"`)
				a.count(r, http.StatusUnauthorized)
				writeError(w, http.StatusUnauthorized, "unauthenticated", "", "/metrics needs a metrics or admin bearer token")
				return
			}
			open.ServeHTTP(w, r)
		})
	}
	mux.Handle("GET /metrics", prom)
	if o.Envoy != nil {
		mux.Handle("POST /json", a.guard(service.ScopeDecide, o.Envoy.ServeHTTP))
	}
	if o.Dashboard != nil {
		data := a.guard(service.ScopeDecide, o.Dashboard.ServeHTTP)
		page := data
		// A browser cannot send a bearer token when it opens the page: a
		// dashboard that can serve its page without data gets such
		// callers there, and the page asks for a token.
		if d, ok := o.Dashboard.(interface {
			ServeLocked(http.ResponseWriter, *http.Request)
		}); ok {
			page = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if a.scope(r) == service.ScopeNone {
					a.count(r, http.StatusUnauthorized)
					d.ServeLocked(w, r)
					return
				}
				data.ServeHTTP(w, r)
			})
		}
		mux.Handle("GET /dashboard", page)
		mux.Handle("GET /dashboard/{$}", page)
		mux.Handle("GET /dashboard/", data)
		// Overrides name keys: admin scope only. A decision token gets
		// {"overrides":null}, not a 403, so the page (which hides the
		// table then) logs no failed request.
		if d, ok := o.Dashboard.(interface {
			ServeOverrides(http.ResponseWriter, *http.Request)
		}); ok {
			mux.Handle("GET /dashboard/overrides", a.guard(service.ScopeDecide, func(w http.ResponseWriter, r *http.Request) {
				if a.scope(r) < service.ScopeAdmin {
					w.Header().Set("Cache-Control", "no-store")
					writeJSON(w, []byte(`{"overrides":null}`))
					return
				}
				d.ServeOverrides(w, r)
			}))
		}
	}
	mux.HandleFunc("GET /{$}", a.index)
	// Everything no route takes, in the API's error shape: the catch-all
	// matches only what the routes above do not, so the hot paths pay
	// nothing for it.
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { unmatched(mux, w, r) })
	return mux
}

// unmatched answers 405 with Allow when another method of the path has a
// route, and 404 otherwise, as {"error":{...}}.
func unmatched(mux *http.ServeMux, w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, m := range []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"} {
		r2 := r.Clone(r.Context())
		r2.Method = m
		if _, p := mux.Handler(r2); p != "/" && p != "" {
			allow = append(allow, m)
		}
	}
	if len(allow) == 0 {
		writeError(w, http.StatusNotFound, "not_found", "", "no such endpoint: "+r.URL.Path)
		return
	}
	w.Header().Set("Allow", strings.Join(allow, ", "))
	writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "", fmt.Sprintf("%s is not allowed on %s (allowed: %s)", r.Method, r.URL.Path, strings.Join(allow, ", ")))
}

func (a *api) index(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(w, `weir rate-limit server

POST /v1/check     {"policy":"NAME","key":"KEY","cost":1}  (a JSON array for a batch)
POST /v1/acquire   {"policy":"NAME","key":"KEY","wait_ms":0}  -> lease (wait_ms up to 5000: wait in line)
POST /v1/release   {"policy":"NAME","key":"KEY","lease":"ID"}
POST /v1/report    {"policy":"NAME","key":"KEY","cost":ACTUAL,"reserved":0}  (settle work's actual cost)
GET  /v1/policies
POST /v1/override  {"policy":"NAME","key":"KEY","plan":"PLAN" or "limits":["100/s"],"for_ms":0,"reason":"..."}  (admin)
POST /v1/override/get, /v1/override/delete  {"policy":"NAME","key":"KEY"}; GET /v1/overrides?policy=NAME  (admin)
POST /json         envoyproxy/ratelimit's JSON endpoint
GET  /metrics /livez /readyz /dashboard
`)
}

// guard checks the caller's scope and counts the request by code.
func (a *api) guard(need service.Scope, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := a.scope(r)
		if got == service.ScopeNone {
			w.Header().Set("WWW-Authenticate", `Bearer realm="weir"`)
			a.count(r, http.StatusUnauthorized)
			writeError(w, http.StatusUnauthorized, "unauthenticated", "", "a valid bearer token is required")
			return
		}
		if got < need {
			a.count(r, http.StatusForbidden)
			writeError(w, http.StatusForbidden, "permission_denied", "", "this operation needs an admin token")
			return
		}
		if !a.Gate.Enter() {
			a.count(r, http.StatusServiceUnavailable)
			w.Header().Set("Retry-After", "1")
			writeError(w, http.StatusServiceUnavailable, "overloaded", "", service.ErrOverloaded.Error())
			return
		}
		defer a.Gate.Leave()
		// net/http's Date header costs a time format per response; the
		// API's answers carry their own timing.
		w.Header()["Date"] = nil
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		h(sw, r)
		a.count(r, sw.code)
	})
}

func (a *api) count(r *http.Request, code int) {
	k := [2]string{r.Pattern, statusText(code)}
	if c, ok := a.codes.Load(k); ok {
		c.(prometheus.Counter).Inc()
		return
	}
	c := a.reqs.WithLabelValues("http", k[0], k[1])
	a.codes.Store(k, c)
	c.Inc()
}

func statusText(code int) string {
	switch code {
	case 200:
		return "200"
	case 400:
		return "400"
	}
	return strconv.Itoa(code)
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (s *statusWriter) WriteHeader(code int) {
	s.code = code
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (a *api) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	err := error(nil)
	if a.Ready != nil {
		err = a.Ready(ctx)
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		if errors.Is(err, weir.ErrUnavailable) {
			// The probe is open to anyone: the store's error can name
			// addresses, so it goes to the logs (lograte), not here.
			io.WriteString(w, "not ready: the rate-limit store is unavailable\n")
			return
		}
		fmt.Fprintf(w, "not ready: %v\n", err)
		return
	}
	io.WriteString(w, "ok\n")
}

// checkBody is one decision request. Unknown fields are rejected.
type checkBody struct {
	Policy string            `json:"policy"`
	Key    string            `json:"key"`
	Fields map[string]string `json:"fields"`
	Cost   *int64            `json:"cost"`
	Lease  string            `json:"lease"`
	WaitMS int64             `json:"wait_ms"` // acquire only
	// Reserved is, for /v1/report only, the units a check took for the
	// work reported (default 0).
	Reserved *int64 `json:"reserved"`
}

func (b *checkBody) request() *service.Request {
	cost := int64(1)
	if b.Cost != nil {
		cost = *b.Cost
	}
	return &service.Request{Policy: b.Policy, Key: b.Key, Fields: b.Fields, Cost: cost, Wait: service.WaitMS(b.WaitMS)}
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// readBody reads the body with the size limit: 413 before reading when the
// declared length is too large, and when the actual body is.
func readBody(w http.ResponseWriter, r *http.Request, buf *bytes.Buffer, limit int64) bool {
	if r.ContentLength > limit {
		writeError(w, http.StatusRequestEntityTooLarge, "too_large", "", fmt.Sprintf("request body larger than %d bytes", limit))
		return false
	}
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, http.StatusRequestEntityTooLarge, "too_large", "", fmt.Sprintf("request body larger than %d bytes", limit))
			return false
		}
		writeError(w, http.StatusBadRequest, "invalid_argument", "", "reading body: "+err.Error())
		return false
	}
	return true
}

// DecodeCheck decodes one check body or a batch (a JSON array). It is the
// HTTP decoder the fuzz test drives; its errors are *weir.FieldError.
func DecodeCheck(data []byte, allowLease bool) (one *checkBody, batch []checkBody, err error) {
	data = bytes.TrimLeft(data, " \t\r\n")
	if len(data) == 0 {
		return nil, nil, &weir.FieldError{Field: "body", Reason: "empty: want a JSON object"}
	}
	if data[0] == '{' {
		one = new(checkBody)
		if decodeFast(data, one) {
			if err := checkLease(one, nil, allowLease); err != nil {
				return nil, nil, err
			}
			return one, nil, nil
		}
		*one = checkBody{}
	}
	if err := invalidText(data); err != nil {
		return nil, nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if data[0] == '[' {
		if err := dec.Decode(&batch); err != nil {
			return nil, nil, jsonFieldError(err, "checks")
		}
		if len(batch) == 0 {
			return nil, nil, &weir.FieldError{Field: "checks", Reason: "empty batch"}
		}
		if len(batch) > service.MaxBatch {
			return nil, nil, &weir.FieldError{Field: "checks", Reason: fmt.Sprintf("at most %d checks per batch (got %d)", service.MaxBatch, len(batch))}
		}
	} else {
		if one == nil {
			one = new(checkBody)
		}
		if err := dec.Decode(one); err != nil {
			return nil, nil, jsonFieldError(err, "")
		}
	}
	if dec.More() {
		return nil, nil, &weir.FieldError{Field: "body", Reason: "trailing data after the JSON value"}
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, nil, &weir.FieldError{Field: "body", Reason: "trailing data after the JSON value"}
	}
	if err := strictMembers(data); err != nil {
		return nil, nil, err
	}
	if err := checkLease(one, batch, allowLease); err != nil {
		return nil, nil, err
	}
	return one, batch, nil
}

// checkFields are the members of a check body, spelled exactly.
var checkFields = []string{"policy", "key", "fields", "cost", "lease", "wait_ms", "reserved"}

// strictMembers refuses what encoding/json lets through in a body it
// decoded: a member whose name matches a field only when case is ignored
// ("Policy"), and a member given twice (encoding/json keeps the last), at
// the top level, in each check of a batch, and in "fields". data is valid
// JSON that encoding/json decoded into the check shape, so the scan only
// reads member names and skips values; it allocates only for a name
// written with escapes.
func strictMembers(data []byte) error {
	i := skipWS(data, 0)
	if i >= len(data) {
		return nil
	}
	if data[i] != '[' {
		_, err := strictObject(data, i, -1)
		return err
	}
	i = skipWS(data, i+1)
	for n := 0; i < len(data) && data[i] != ']'; n++ {
		var err error
		if data[i] == '{' {
			i, err = strictObject(data, i, n)
		} else {
			i = skipJSON(data, i)
		}
		if err != nil {
			return err
		}
		i = skipWS(data, i)
		if i < len(data) && data[i] == ',' {
			i = skipWS(data, i+1)
		}
	}
	return nil
}

// memberPath names a member in errors: "key", or "checks[3].key" in a
// batch (item >= 0).
func memberPath(item int, name string) string {
	if item < 0 {
		return name
	}
	return "checks[" + strconv.Itoa(item) + "]." + name
}

// strictObject checks the object at data[i] ('{'), item item of a batch
// (-1: not a batch), and returns the index after it.
func strictObject(data []byte, i, item int) (int, error) {
	var seen [7]bool
	i = skipWS(data, i+1)
	for i < len(data) && data[i] != '}' {
		name, next := memberName(data, i)
		k := -1
		for j, f := range checkFields {
			if string(name) == f {
				k = j
				break
			}
		}
		if k < 0 {
			for _, f := range checkFields {
				if strings.EqualFold(f, string(name)) {
					return 0, &weir.FieldError{Field: memberPath(item, string(name)), Reason: fmt.Sprintf("unknown field (field names are exact: %q)", f)}
				}
			}
			return 0, &weir.FieldError{Field: memberPath(item, string(name)), Reason: "unknown field"}
		}
		if seen[k] {
			return 0, &weir.FieldError{Field: memberPath(item, string(name)), Reason: "given more than once"}
		}
		seen[k] = true
		i = skipWS(data, next)
		i = skipWS(data, i+1)                          // ':'
		if k == 2 && i < len(data) && data[i] == '{' { // "fields"
			var err error
			if i, err = strictFields(data, i, item); err != nil {
				return 0, err
			}
		} else {
			i = skipJSON(data, i)
		}
		i = skipWS(data, i)
		if i < len(data) && data[i] == ',' {
			i = skipWS(data, i+1)
		}
	}
	return i + 1, nil
}

// strictFields checks the "fields" object at data[i] for a repeated name.
// A handful of names is compared in place; more go to a map.
func strictFields(data []byte, i, item int) (int, error) {
	var few [16][]byte
	var n int
	var many map[string]bool
	i = skipWS(data, i+1)
	for i < len(data) && data[i] != '}' {
		name, next := memberName(data, i)
		dup := false
		if many != nil {
			dup = many[string(name)]
			many[string(name)] = true
		} else {
			for _, f := range few[:n] {
				if bytes.Equal(f, name) {
					dup = true
				}
			}
			if n < len(few) {
				few[n] = name
				n++
			} else {
				many = make(map[string]bool)
				for _, f := range few {
					many[string(f)] = true
				}
				many[string(name)] = true
			}
		}
		if dup {
			return 0, &weir.FieldError{Field: memberPath(item, "fields."+string(name)), Reason: "given more than once"}
		}
		i = skipWS(data, next)
		i = skipJSON(data, skipWS(data, i+1))
		i = skipWS(data, i)
		if i < len(data) && data[i] == ',' {
			i = skipWS(data, i+1)
		}
	}
	return i + 1, nil
}

// memberName reads the string at data[i] and returns it unescaped (in
// place when it has no escapes) and the index after it.
func memberName(data []byte, i int) ([]byte, int) {
	end := skipJSON(data, i)
	raw := data[i:end]
	if bytes.IndexByte(raw, '\\') < 0 {
		return raw[1 : len(raw)-1], end
	}
	var name string
	_ = json.Unmarshal(raw, &name)
	return []byte(name), end
}

// skipJSON returns the index after the value at data[i] (valid JSON).
func skipJSON(data []byte, i int) int {
	if i >= len(data) {
		return i
	}
	switch data[i] {
	case '"':
		for j := i + 1; j < len(data); j++ {
			switch data[j] {
			case '\\':
				j++
			case '"':
				return j + 1
			}
		}
		return len(data)
	case '{', '[':
		depth := 0
		for j := i; j < len(data); j++ {
			switch data[j] {
			case '"':
				j = skipJSON(data, j) - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return len(data)
	}
	for j := i; j < len(data); j++ {
		switch data[j] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return j
		}
	}
	return len(data)
}

func checkLease(one *checkBody, batch []checkBody, allowLease bool) error {
	if allowLease {
		return nil
	}
	if one != nil && one.Lease != "" {
		return &weir.FieldError{Field: "lease", Reason: "only /v1/release takes a lease"}
	}
	for i := range batch {
		if batch[i].Lease != "" {
			return &weir.FieldError{Field: fmt.Sprintf("checks[%d].lease", i), Reason: "only /v1/release takes a lease"}
		}
	}
	return nil
}

// jsonFieldError names the field of a JSON decoding error.
func jsonFieldError(err error, prefix string) error {
	var ute *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &ute):
		field := ute.Field
		if field == "" {
			field = "body"
		}
		if prefix != "" {
			field = prefix + "." + field
		}
		return &weir.FieldError{Field: field, Reason: fmt.Sprintf("cannot be a JSON %s", ute.Value)}
	case errors.As(err, &se):
		return &weir.FieldError{Field: "body", Reason: fmt.Sprintf("malformed JSON at offset %d: %v", se.Offset, se)}
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		return &weir.FieldError{Field: "body", Reason: "truncated JSON"}
	}
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		name = strings.Trim(name, `"`)
		reason := "unknown field"
		switch name {
		case "limit", "limits", "period", "quota", "burst", "duration", "algorithm", "rate":
			reason = "unknown field: limits come from the server's policies, never from callers"
		}
		if name == "" {
			return &weir.FieldError{Field: "body", Reason: `unknown field ""`}
		}
		return &weir.FieldError{Field: name, Reason: reason}
	}
	return &weir.FieldError{Field: "body", Reason: strings.TrimPrefix(msg, "json: ")}
}

func (a *api) decode(w http.ResponseWriter, r *http.Request, allowLease, allowBatch, allowReserved bool) (*checkBody, []checkBody, bool) {
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer bufPool.Put(buf)
	limit := int64(MaxBodyBytes)
	if allowBatch {
		limit = MaxBatchBodyBytes
	}
	if !readBody(w, r, buf, limit) {
		return nil, nil, false
	}
	one, batch, err := DecodeCheck(buf.Bytes(), allowLease)
	if err == nil && batch != nil && !allowBatch {
		err = &weir.FieldError{Field: "body", Reason: "want a JSON object (batches are for /v1/check)"}
	}
	if err == nil && !allowReserved {
		err = noReserved(one, batch)
	}
	if err != nil {
		a.fail(w, err)
		return nil, nil, false
	}
	return one, batch, true
}

func (a *api) check(w http.ResponseWriter, r *http.Request) {
	one, batch, ok := a.decode(w, r, false, true, false)
	if !ok {
		return
	}
	out := bufPool.Get().(*bytes.Buffer)
	out.Reset()
	defer bufPool.Put(out)
	if one != nil {
		res, err := a.Service.Check(r.Context(), one.request())
		if err != nil {
			a.fail(w, err)
			return
		}
		writeJSON(w, appendResult(out.AvailableBuffer(), &res))
		return
	}
	reqs := make([]service.Request, len(batch))
	for i := range batch {
		reqs[i] = *batch[i].request()
	}
	results, err := a.Service.CheckBatch(r.Context(), reqs)
	if err != nil {
		a.fail(w, err)
		return
	}
	b := out.AvailableBuffer()
	b = append(b, '[')
	for i := range results {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendResult(b, &results[i])
	}
	b = append(b, ']')
	writeJSON(w, b)
}

func (a *api) acquire(w http.ResponseWriter, r *http.Request) {
	one, _, ok := a.decode(w, r, false, false, false)
	if !ok {
		return
	}
	res, err := a.Service.Acquire(r.Context(), one.request())
	if err != nil {
		a.fail(w, err)
		return
	}
	writeJSON(w, appendResult(nil, &res))
}

// noReserved refuses "reserved" outside /v1/report.
func noReserved(one *checkBody, batch []checkBody) error {
	if one != nil && one.Reserved != nil {
		return &weir.FieldError{Field: "reserved", Reason: "only /v1/report takes it"}
	}
	for i := range batch {
		if batch[i].Reserved != nil {
			return &weir.FieldError{Field: fmt.Sprintf("checks[%d].reserved", i), Reason: "only /v1/report takes it"}
		}
	}
	return nil
}

// report settles the actual cost of work (service.Report): "cost" is the
// actual cost, required; "reserved" what a check took for it.
func (a *api) report(w http.ResponseWriter, r *http.Request) {
	one, _, ok := a.decode(w, r, false, false, true)
	if !ok {
		return
	}
	if one.Cost == nil {
		a.fail(w, &weir.FieldError{Field: "cost", Reason: "is required: the actual cost of the work"})
		return
	}
	reserved := int64(0)
	if one.Reserved != nil {
		reserved = *one.Reserved
	}
	res, err := a.Service.Report(r.Context(), one.request(), reserved)
	if err != nil {
		a.fail(w, err)
		return
	}
	writeJSON(w, appendResult(nil, &res))
}

func (a *api) release(w http.ResponseWriter, r *http.Request) {
	one, _, ok := a.decode(w, r, true, false, false)
	if !ok {
		return
	}
	if err := a.Service.Release(r.Context(), one.request(), one.Lease); err != nil {
		a.fail(w, err)
		return
	}
	writeJSON(w, []byte(`{"released":true}`))
}

func (a *api) reset(w http.ResponseWriter, r *http.Request) {
	one, _, ok := a.decode(w, r, false, false, false)
	if !ok {
		return
	}
	admin := a.scope(r) >= service.ScopeAdmin
	if err := a.Service.Reset(r.Context(), one.request(), admin); err != nil {
		a.fail(w, err)
		return
	}
	writeJSON(w, []byte(`{"reset":true}`))
}

func (a *api) reload(w http.ResponseWriter, r *http.Request) {
	if a.Reload == nil {
		writeError(w, http.StatusNotImplemented, "unimplemented", "", "no configuration file to reload")
		return
	}
	if err := a.Reload(r.Context()); err != nil {
		writeError(w, http.StatusUnprocessableEntity, "invalid_config", "", err.Error())
		return
	}
	writeJSON(w, []byte(`{"reloaded":true}`))
}

type policyJSON struct {
	Name        string   `json:"name"`
	Limits      []string `json:"limits"`
	Key         string   `json:"key"`
	Fields      []string `json:"fields"`
	Shadow      bool     `json:"shadow"`
	OnError     string   `json:"on_store_error"`
	Concurrency bool     `json:"concurrency"`
	Description string   `json:"description,omitempty"`
}

func (a *api) policies(w http.ResponseWriter, r *http.Request) {
	infos := a.Service.Policies()
	out := struct {
		Policies []policyJSON `json:"policies"`
	}{Policies: make([]policyJSON, 0, len(infos))}
	for _, p := range infos {
		pj := policyJSON{Name: p.Name, Key: p.Key, Fields: p.Fields, Shadow: p.Shadow, OnError: p.OnError, Concurrency: p.Concurrency, Description: p.Description}
		for _, l := range p.Limits {
			s := l.String()
			if l.Name != s {
				s += " name=" + l.Name
			}
			pj.Limits = append(pj.Limits, s)
		}
		out.Policies = append(out.Policies, pj)
	}
	b, _ := json.Marshal(out)
	writeJSON(w, b)
}

// fail writes err with the status of the one error vocabulary.
func (a *api) fail(w http.ResponseWriter, err error) {
	var fe *weir.FieldError
	if overrideError(w, err) {
		return
	}
	switch {
	case errors.As(err, &fe):
		writeError(w, http.StatusBadRequest, "invalid_argument", fe.Field, fe.Reason)
	case errors.Is(err, service.ErrPermission):
		writeError(w, http.StatusForbidden, "permission_denied", "", err.Error())
	case errors.Is(err, weir.ErrUnavailable):
		a.StoreLog.Fail(err)
		writeError(w, http.StatusServiceUnavailable, "unavailable", "", "the rate-limit store is unavailable")
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		writeError(w, http.StatusServiceUnavailable, "unavailable", "", "request cancelled or timed out")
	default:
		a.Logger.Error("internal error", "err", err)
		writeError(w, http.StatusInternalServerError, "internal", "", "internal error")
	}
}

// writeJSON writes b, a JSON value, and the newline that ends every JSON
// body of the API.
func writeJSON(w http.ResponseWriter, b []byte) {
	h := w.Header()
	h["Content-Type"] = jsonCT
	w.Write(append(b, '\n'))
}

var jsonCT = []string{"application/json"}

func writeError(w http.ResponseWriter, code int, kind, field, msg string) {
	b := []byte(`{"error":{"code":`)
	b = appendString(b, kind)
	if field != "" {
		b = append(b, `,"field":`...)
		b = appendString(b, field)
	}
	b = append(b, `,"message":`...)
	if field != "" {
		msg = field + ": " + msg
	}
	b = appendString(b, msg)
	b = append(b, "}}\n"...)
	w.Header()["Content-Type"] = jsonCT
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	w.Write(b)
}

func ceilMS(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Millisecond - 1) / time.Millisecond)
}

// appendResult encodes a result as the documented JSON object.
func appendResult(b []byte, r *service.Result) []byte {
	b = append(b, `{"allowed":`...)
	b = strconv.AppendBool(b, r.Allowed)
	b = append(b, `,"policy":`...)
	b = appendString(b, r.Policy)
	b = append(b, `,"limit":`...)
	b = strconv.AppendInt(b, r.Limit, 10)
	b = append(b, `,"remaining":`...)
	b = strconv.AppendInt(b, r.Remaining, 10)
	b = append(b, `,"retry_after_ms":`...)
	b = strconv.AppendInt(b, ceilMS(r.RetryAfter), 10)
	b = append(b, `,"reset_after_ms":`...)
	b = strconv.AppendInt(b, ceilMS(r.ResetAfter), 10)
	b = append(b, `,"limit_name":`...)
	b = appendString(b, r.LimitName)
	if r.Shadowed {
		b = append(b, `,"shadow":true`...)
	}
	if r.Source != weir.SourceStore {
		b = append(b, `,"source":`...)
		b = appendString(b, r.Source.String())
	}
	if r.Lease != "" {
		b = append(b, `,"lease":`...)
		b = appendString(b, r.Lease)
	}
	if r.Debt != 0 {
		b = append(b, `,"debt":`...)
		b = strconv.AppendInt(b, r.Debt, 10)
	}
	if r.Clamped {
		b = append(b, `,"clamped":true`...)
	}
	return append(b, '}')
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20 || c == '<' || c == '>' || c == '&':
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

// scope is the caller's scope: its bearer token, or a verified TLS client
// certificate when the server accepts them.
func (a *api) scope(r *http.Request) service.Scope {
	return a.Auth.ScopeOf(r.Header.Get("Authorization"), r.TLS != nil && len(r.TLS.VerifiedChains) > 0)
}
