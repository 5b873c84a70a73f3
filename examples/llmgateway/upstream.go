package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
)

// fakeUpstream answers POST /v1/chat/completions as an OpenAI-compatible
// API would, without a model: the reply is filler text, and usage counts
// the tokens with a tokenizer of its own (denser than the gateway's
// estimate, so that some answers cost more than estimated):
//
//	prompt_tokens     = Σ over messages of ceil(len(content)/3) + 3
//	completion_tokens = max_tokens (or max_completion_tokens; 16 without
//	                    either), or a quarter of it, rounded up, when the
//	                    last message contains "brief"
//
// With "stream": true it answers server-sent events, the usage in a last
// chunk when stream_options.include_usage is set.
//
// It keeps the total of the tokens it served per Authorization header, so
// tests can compare what a key used with its budget.
type fakeUpstream struct {
	mu   sync.Mutex
	used map[string]int64 // total_tokens served, per Authorization
}

func newFakeUpstream() *fakeUpstream { return &fakeUpstream{used: map[string]int64{}} }

// Used returns the tokens served so far to requests with the given
// Authorization header.
func (u *fakeUpstream) Used(auth string) int64 {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.used[auth]
}

func (u *fakeUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/chat/completions" {
		http.Error(w, `{"error":{"message":"not found","type":"invalid_request_error"}}`, http.StatusNotFound)
		return
	}
	var req chatRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody)).Decode(&req); err != nil || len(req.Messages) == 0 {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `{"error":{"message":"want a JSON body with messages","type":"invalid_request_error"}}`+"\n")
		return
	}
	var prompt int64
	last := ""
	for _, m := range req.Messages {
		text := m.text()
		prompt += (int64(len(text))+2)/3 + 3
		last = text
	}
	completion := req.maxTokens(16)
	if strings.Contains(last, "brief") {
		completion = (completion + 3) / 4
	}
	total := prompt + completion
	u.mu.Lock()
	u.used[r.Header.Get("Authorization")] += total
	u.mu.Unlock()
	usage := map[string]int64{"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": total}
	if req.Stream {
		// Server-sent events: the reply in three chunks, then (when asked)
		// a chunk with the usage and no choices, then [DONE].
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range 3 {
			chunk, _ := json.Marshal(map[string]any{"id": "chatcmpl-fake", "object": "chat.completion.chunk", "choices": []any{map[string]any{"index": 0, "delta": map[string]string{"content": fmt.Sprintf("la%d ", i)}}}})
			fmt.Fprintf(w, "data: %s\n\n", chunk)
			http.NewResponseController(w).Flush()
		}
		if req.StreamOptions.IncludeUsage {
			chunk, _ := json.Marshal(map[string]any{"id": "chatcmpl-fake", "object": "chat.completion.chunk", "choices": []any{}, "usage": usage})
			fmt.Fprintf(w, "data: %s\n\n", chunk)
		}
		fmt.Fprint(w, "data: [DONE]\n\n")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"id":      "chatcmpl-fake",
		"object":  "chat.completion",
		"model":   req.Model,
		"choices": []any{map[string]any{"index": 0, "finish_reason": "length", "message": map[string]any{"role": "assistant", "content": strings.Repeat("la ", int(min(completion, 1000)))}}},
		"usage":   usage,
	})
}
