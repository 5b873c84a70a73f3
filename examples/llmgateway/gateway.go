package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"

	"github.com/weir-go/weir"
	"github.com/weir-go/weir/httplimit"
)

// maxBody is the largest request body the gateway reads (and the fake
// upstream accepts).
const maxBody = 1 << 20

// limits are a key's budgets: requests per minute and tokens per minute.
type limits struct {
	RPM, TPM int64
	// DefaultMaxTokens is the completion estimate of a request that sets
	// no max_tokens.
	DefaultMaxTokens int64
}

// chatRequest is what the gateway reads of a chat-completion request.
type chatRequest struct {
	Model               string    `json:"model"`
	Messages            []message `json:"messages"`
	MaxTokens           int64     `json:"max_tokens"`
	MaxCompletionTokens int64     `json:"max_completion_tokens"`
	N                   int64     `json:"n"`
	Stream              bool      `json:"stream"`
	StreamOptions       struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
}

// A message is one message of a chat request.
type message struct {
	Content json.RawMessage `json:"content"`
}

// text returns a message's text: the string, or the text parts of an
// array of content parts.
func (m *message) text() string {
	var s string
	if json.Unmarshal(m.Content, &s) == nil {
		return s
	}
	var parts []struct {
		Text string `json:"text"`
	}
	_ = json.Unmarshal(m.Content, &parts)
	var b strings.Builder
	for _, p := range parts {
		b.WriteString(p.Text)
	}
	return b.String()
}

// maxTokens is the request's completion cap, def when it sets none.
func (c *chatRequest) maxTokens(def int64) int64 {
	switch {
	case c.MaxCompletionTokens > 0:
		return c.MaxCompletionTokens
	case c.MaxTokens > 0:
		return c.MaxTokens
	}
	return def
}

// estimate is the tokens a chat-completion request is expected to cost,
// before it is sent: the prompt at 4 bytes per token plus 4 per message
// and 3 for the reply's priming, plus the completion cap (max_tokens or
// max_completion_tokens, defMax without one) times n. A body that is not
// a chat request estimates defMax. The prompt part is a guess (a
// tokenizer can give more tokens than bytes/4); the completion part is an
// upper bound as long as the upstream honours max_tokens. Whatever the
// actual cost, the gateway settles to it from the answer's usage.
func estimate(body []byte, defMax int64) int64 {
	var req chatRequest
	if json.Unmarshal(body, &req) != nil || len(req.Messages) == 0 {
		return defMax
	}
	prompt := int64(3)
	for i := range req.Messages {
		prompt += (int64(len(req.Messages[i].text()))+3)/4 + 4
	}
	return prompt + req.maxTokens(defMax)*max(req.N, 1)
}

type estimateKey struct{}

// apiKey keys a request by its bearer token, hashed so that the store
// never holds a credential.
func apiKey(r *http.Request) (string, error) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || strings.TrimSpace(tok) == "" {
		return "", fmt.Errorf("no bearer API key: %w", httplimit.ErrNoKey)
	}
	sum := sha256.Sum256([]byte(tok))
	return "key:" + hex.EncodeToString(sum[:12]), nil
}

// newGateway returns the gateway handler: a reverse proxy to upstream
// limited per API key to l.RPM requests and l.TPM tokens per minute, both
// kept in store.
func newGateway(store weir.Store, upstream *url.URL, l limits) (http.Handler, error) {
	reqs, err := weir.NewLimiter(store, weir.PerMinute(l.RPM).WithName("requests"))
	if err != nil {
		return nil, err
	}
	toks, err := weir.NewLimiter(store, weir.PerMinute(l.TPM).WithName("tokens"))
	if err != nil {
		return nil, err
	}
	mw, err := httplimit.New(
		httplimit.WithKey(apiKey),
		httplimit.WithOnUnkeyed(func(w http.ResponseWriter, _ *http.Request, err error) {
			w.Header().Set("WWW-Authenticate", "Bearer")
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"error":{"message":"an API key is required (Authorization: Bearer KEY)","type":"invalid_request_error"}}`+"\n")
		}),
		httplimit.Policy{Limiter: reqs},
		httplimit.Policy{
			Limiter: toks,
			// Before the call: the estimate, read from the body below.
			Estimate: func(r *http.Request) int64 { n, _ := r.Context().Value(estimateKey{}).(int64); return n },
			// After: what the upstream's usage says (reported by
			// readUsage), or the estimate if it said nothing.
			Cost: httplimit.ReportedCost,
		},
	)
	if err != nil {
		return nil, err
	}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(upstream)
			pr.Out.Host = upstream.Host
		},
		ModifyResponse: readUsage,
	}
	limited := mw.Handler(proxy)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var est int64
		if r.Method == http.MethodPost && r.Body != nil {
			body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
			if err != nil {
				var mbe *http.MaxBytesError
				if errors.As(err, &mbe) {
					http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
					return
				}
				http.Error(w, "reading the request body: "+err.Error(), http.StatusBadRequest)
				return
			}
			if strings.HasSuffix(r.URL.Path, "/chat/completions") {
				est = estimate(body, l.DefaultMaxTokens)
			}
			r = r.WithContext(context.WithValue(r.Context(), estimateKey{}, est))
			r.Body = io.NopCloser(bytes.NewReader(body))
			r.ContentLength = int64(len(body))
		}
		limited.ServeHTTP(w, r)
	}), nil
}

// readUsage reports the tokens of an answer to the middleware: usage's
// total_tokens of a JSON answer, 0 for an error answer without usage (the
// upstream did no work), nothing otherwise (the estimate stands). It runs
// before the answer's head is sent, so the RateLimit fields carry it. A
// stream (text/event-stream) is passed on as it comes; its usage chunk
// (sent when the client asked for stream_options.include_usage) is
// reported as it goes by, and charged when the stream ends.
func readUsage(resp *http.Response) error {
	ctx := resp.Request.Context()
	ct := resp.Header.Get("Content-Type")
	if strings.HasPrefix(ct, "text/event-stream") {
		resp.Body = &streamUsage{ReadCloser: resp.Body, ctx: ctx}
		return nil
	}
	if !strings.HasPrefix(ct, "application/json") {
		return nil
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	_ = resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if err != nil {
		return err
	}
	switch n, ok := usageOf(body); {
	case ok:
		httplimit.ReportCost(ctx, n)
	case resp.StatusCode >= 400:
		httplimit.ReportCost(ctx, 0)
	}
	return nil
}

// usageOf reads usage.total_tokens of a JSON answer or chunk.
func usageOf(data []byte) (int64, bool) {
	var answer struct {
		Usage *struct {
			TotalTokens int64 `json:"total_tokens"`
		} `json:"usage"`
	}
	if json.Unmarshal(data, &answer) != nil || answer.Usage == nil {
		return 0, false
	}
	return max(answer.Usage.TotalTokens, 0), true
}

// streamUsage passes a server-sent-events body on and reports the usage
// of the "data:" line that carries one.
type streamUsage struct {
	io.ReadCloser
	ctx  context.Context
	line []byte // the current line so far (at most 64 KiB kept)
}

func (s *streamUsage) Read(p []byte) (int, error) {
	n, err := s.ReadCloser.Read(p)
	for _, c := range p[:n] {
		if c != '\n' {
			if len(s.line) < 64<<10 {
				s.line = append(s.line, c)
			}
			continue
		}
		if data, ok := bytes.CutPrefix(bytes.TrimSpace(s.line), []byte("data:")); ok && bytes.Contains(data, []byte(`"usage"`)) {
			if tokens, ok := usageOf(bytes.TrimSpace(data)); ok {
				httplimit.ReportCost(s.ctx, tokens)
			}
		}
		s.line = s.line[:0]
	}
	return n, err
}
