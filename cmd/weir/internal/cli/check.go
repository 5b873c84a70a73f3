package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/weir-go/weir"
	"github.com/weir-go/weir/server/tlsconf"
)

func checkCommand(stdio IO) *cobra.Command {
	var server, policy, key, token string
	var tlsFiles tlsconf.ClientFiles
	var cost int64
	var fields map[string]string
	var asJSON bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "check --policy P --key K [--cost N] [--server URL]",
		Short: "Ask a running weir server for a decision",
		Long: `Ask a running weir server for a decision and print it.

For an HTTPS server (an https:// --server URL), --ca names the PEM file of
the authority that signed the server's certificate (default: the system's
roots); --cert and --cert-key present a client certificate to a server that
requires one (mutual TLS).

Exit status:
  0  allowed
  1  denied
  2  bad usage: a flag, its value, or a TLS file
  3  the server refused the request (4xx: an unknown policy, a bad key or
     field, a missing or wrong token)
  4  no decision: the server could not be reached, did not answer in
     time, failed (5xx: its store is down, say), or answered something
     that is not a decision`,
		Args: func(cmd *cobra.Command, args []string) error {
			if err := cobra.NoArgs(cmd, args); err != nil {
				return &ExitError{Code: exitUsage, Err: err}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if policy == "" {
				return &ExitError{Code: exitUsage, Err: errors.New(`required flag "policy" not set`)}
			}
			body := map[string]any{"policy": policy, "key": key, "cost": cost}
			if len(fields) > 0 {
				body["fields"] = fields
			}
			b, _ := json.Marshal(body)
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			useTLS := tlsFiles != (tlsconf.ClientFiles{})
			url := strings.TrimRight(server, "/") + "/v1/check"
			if !strings.Contains(server, "://") {
				if useTLS {
					url = "https://" + url
				} else {
					url = "http://" + url
				}
			}
			client := http.DefaultClient
			if useTLS {
				cfg, err := tlsconf.ClientConfig(tlsFiles)
				if fe, ok := errors.AsType[*tlsconf.FileError](err); ok {
					flag := map[string]string{tlsconf.FieldCA: "--ca", tlsconf.FieldCert: "--cert", tlsconf.FieldKey: "--cert-key"}[fe.Field]
					if fe.File != "" {
						flag += " " + fe.File
					}
					return &ExitError{Code: exitUsage, Err: fmt.Errorf("%s: %w", flag, fe.Err)}
				}
				if err != nil {
					return &ExitError{Code: exitUsage, Err: err}
				}
				if !strings.HasPrefix(url, "https://") {
					return &ExitError{Code: exitUsage, Err: fmt.Errorf("--ca, --cert and --cert-key need an https:// --server, not %s", server)}
				}
				tr := http.DefaultTransport.(*http.Transport).Clone()
				tr.TLSClientConfig = cfg
				defer tr.CloseIdleConnections()
				client = &http.Client{Transport: tr}
			}
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(b))
			if err != nil {
				return &ExitError{Code: exitUsage, Err: fmt.Errorf("--server %s: %w", server, err)}
			}
			req.Header.Set("Content-Type", "application/json")
			if t := tokenValue(token); t != "" {
				req.Header.Set("Authorization", "Bearer "+t)
			}
			resp, err := client.Do(req)
			if err != nil {
				return &ExitError{Code: exitNoDecision, Err: err}
			}
			defer resp.Body.Close()
			data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			if err != nil {
				return &ExitError{Code: exitNoDecision, Err: err}
			}
			if resp.StatusCode != http.StatusOK {
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
			var d struct {
				Allowed      bool   `json:"allowed"`
				Policy       string `json:"policy"`
				Limit        int64  `json:"limit"`
				LimitName    string `json:"limit_name"`
				Remaining    int64  `json:"remaining"`
				RetryAfterMS int64  `json:"retry_after_ms"`
				ResetAfterMS int64  `json:"reset_after_ms"`
				Shadow       bool   `json:"shadow"`
				Source       string `json:"source"`
			}
			if err := json.Unmarshal(data, &d); err != nil {
				return &ExitError{Code: exitNoDecision, Err: fmt.Errorf("bad answer from server: %v", err)}
			}
			if asJSON {
				stdio.Stdout.Write(append(bytes.TrimSpace(data), '\n'))
			} else {
				verdict := "allowed"
				if !d.Allowed {
					verdict = "denied"
				}
				fmt.Fprintf(stdio.Stdout, "%s: policy %s, limit %s, remaining %d", verdict, d.Policy, limitText(d.LimitName, d.Limit), d.Remaining)
				if !d.Allowed {
					fmt.Fprintf(stdio.Stdout, ", retry after %v", time.Duration(d.RetryAfterMS)*time.Millisecond)
				}
				fmt.Fprintf(stdio.Stdout, ", full again in %v", time.Duration(d.ResetAfterMS)*time.Millisecond)
				if d.Shadow {
					fmt.Fprint(stdio.Stdout, " (shadow policy: would have denied)")
				}
				if d.Source != "" {
					fmt.Fprintf(stdio.Stdout, " (decided by %s)", d.Source)
				}
				fmt.Fprintln(stdio.Stdout)
			}
			if !d.Allowed {
				return &ExitError{Code: exitDenied}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&server, "server", "http://127.0.0.1:8080", "server URL")
	f.StringVar(&policy, "policy", "", "policy name (required)")
	f.StringVar(&key, "key", "", "key")
	f.Int64Var(&cost, "cost", 1, "units to take (0 peeks)")
	f.StringToStringVar(&fields, "field", nil, "template field NAME=VALUE (repeatable)")
	f.StringVar(&token, "token", "env:WEIR_TOKEN", "bearer token (env:NAME reads $NAME)")
	f.BoolVar(&asJSON, "json", false, "print the server's JSON answer")
	f.DurationVar(&timeout, "timeout", 5*time.Second, "request timeout")
	f.StringVar(&tlsFiles.CA, "ca", "", "PEM CA certificates trusted for an https:// server (default: the system's roots)")
	f.StringVar(&tlsFiles.Cert, "cert", "", "PEM client certificate, for a server that requires one (mutual TLS)")
	f.StringVar(&tlsFiles.Key, "cert-key", "", "PEM private key of --cert (--key is the rate-limit key)")
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &ExitError{Code: exitUsage, Err: err}
	})
	return cmd
}

// weir check's exit statuses (its help lists them).
const (
	exitDenied     = 1
	exitUsage      = 2
	exitRefused    = 3
	exitNoDecision = 4
)

// limitText shows the deciding limit of an answer: an unnamed limit is
// named by its text form ("100/s burst=200"), which says it all; a limit
// with a name of its own gets its quota beside the name.
func limitText(name string, quota int64) string {
	if l, err := weir.ParseLimit(name); err == nil && l.Quota == quota {
		return name
	}
	return fmt.Sprintf("%s (quota %d)", name, quota)
}

// tokenValue resolves "env:NAME" to $NAME.
func tokenValue(s string) string {
	if name, ok := strings.CutPrefix(s, "env:"); ok {
		return os.Getenv(name)
	}
	return s
}
