package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"github.com/weir-go/weir/server/tlsconf"
)

// apiClient is what the commands that call a running server share (weir
// check, weir override): the server, its token and TLS files, and how to
// turn an answer into an exit status.
type apiClient struct {
	server, token string
	tokenDefault  string // the --token default: env:WEIR_TOKEN or env:WEIR_ADMIN
	tls           tlsconf.ClientFiles
	timeout       time.Duration
	asJSON        bool
}

func (c *apiClient) flags(f *pflag.FlagSet) {
	f.StringVar(&c.server, "server", "http://127.0.0.1:8080", "server URL")
	tokenHelp := "bearer token (env:NAME reads $NAME)"
	if c.tokenDefault == "env:WEIR_ADMIN" {
		tokenHelp = "admin " + tokenHelp
	}
	f.StringVar(&c.token, "token", c.tokenDefault, tokenHelp)
	f.BoolVar(&c.asJSON, "json", false, "print the server's JSON answer")
	f.DurationVar(&c.timeout, "timeout", 5*time.Second, "request timeout")
	f.StringVar(&c.tls.CA, "ca", "", "PEM CA certificates trusted for an https:// server (default: the system's roots)")
	f.StringVar(&c.tls.Cert, "cert", "", "PEM client certificate, for a server that requires one (mutual TLS)")
	f.StringVar(&c.tls.Key, "cert-key", "", "PEM private key of --cert (--key is the rate-limit key)")
}

// do sends one request to path (body nil: GET) and returns the answer of
// a 200, or an *ExitError: exitUsage for a bad flag, exitRefused for a
// 4xx, exitNoDecision when the server could not answer.
func (c *apiClient) do(ctx context.Context, path string, body any) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	u, client, done, err := c.endpoint(path)
	if err != nil {
		return nil, err
	}
	defer done()
	method, rd := http.MethodGet, io.Reader(nil)
	if body != nil {
		b, _ := json.Marshal(body)
		method, rd = http.MethodPost, bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, &ExitError{Code: exitUsage, Err: fmt.Errorf("--server %s: %w", c.server, err)}
	}
	req.Header.Set("Content-Type", "application/json")
	if t := tokenValue(c.token); t != "" {
		req.Header.Set("Authorization", "Bearer "+t)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, &ExitError{Code: exitNoDecision, Err: err}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return nil, &ExitError{Code: exitNoDecision, Err: err}
	}
	if resp.StatusCode != http.StatusOK {
		return nil, answerError(resp, data)
	}
	return data, nil
}

// endpoint returns path's URL on the server (http:// unless TLS files
// are given, when no scheme is) and the client to call it with, and a
// function that releases the client's connections.
func (c *apiClient) endpoint(path string) (string, *http.Client, func(), error) {
	useTLS := c.tls != (tlsconf.ClientFiles{})
	u := strings.TrimRight(c.server, "/") + path
	if !strings.Contains(c.server, "://") {
		if useTLS {
			u = "https://" + u
		} else {
			u = "http://" + u
		}
	}
	if !useTLS {
		return u, http.DefaultClient, func() {}, nil
	}
	cfg, err := tlsconf.ClientConfig(c.tls)
	if fe, ok := errors.AsType[*tlsconf.FileError](err); ok {
		flag := map[string]string{tlsconf.FieldCA: "--ca", tlsconf.FieldCert: "--cert", tlsconf.FieldKey: "--cert-key"}[fe.Field]
		if fe.File != "" {
			flag += " " + fe.File
		}
		return "", nil, nil, &ExitError{Code: exitUsage, Err: fmt.Errorf("%s: %w", flag, fe.Err)}
	}
	if err != nil {
		return "", nil, nil, &ExitError{Code: exitUsage, Err: err}
	}
	if !strings.HasPrefix(u, "https://") {
		return "", nil, nil, &ExitError{Code: exitUsage, Err: fmt.Errorf("--ca, --cert and --cert-key need an https:// --server, not %s", c.server)}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = cfg
	return u, &http.Client{Transport: tr}, tr.CloseIdleConnections, nil
}

// answerError is the ExitError of a non-200 answer: exitRefused for a
// 4xx, exitNoDecision otherwise, with the message of the server's
// {"error":{...}} body when it has one.
func answerError(resp *http.Response, data []byte) error {
	var e struct {
		Error struct{ Message string } `json:"error"`
	}
	msg := strings.TrimSpace(string(data))
	if json.Unmarshal(data, &e) == nil && e.Error.Message != "" {
		msg = e.Error.Message
	}
	code := exitNoDecision
	if resp.StatusCode >= 400 && resp.StatusCode < 500 {
		code = exitRefused
	}
	return &ExitError{Code: code, Err: fmt.Errorf("server answered %s: %s", resp.Status, msg)}
}
