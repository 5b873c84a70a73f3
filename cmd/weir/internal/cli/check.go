package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/weir-go/weir"
)

func checkCommand(stdio IO) *cobra.Command {
	c := &apiClient{tokenDefault: "env:WEIR_TOKEN"}
	var policy, key string
	var cost int64
	var fields map[string]string
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
			data, err := c.do(cmd.Context(), "/v1/check", body)
			if err != nil {
				return err
			}
			return printDecision(stdio.Stdout, data, c.asJSON)
		},
	}
	f := cmd.Flags()
	c.flags(f)
	f.StringVar(&policy, "policy", "", "policy name (required)")
	f.StringVar(&key, "key", "", "key")
	f.Int64Var(&cost, "cost", 1, "units to take (0 peeks)")
	f.StringToStringVar(&fields, "field", nil, "template field NAME=VALUE (repeatable)")
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &ExitError{Code: exitUsage, Err: err}
	})
	return cmd
}

// printDecision prints the server's answer to a check (as it came with
// asJSON) and returns the ExitError of a denial, or of an answer that is
// not a decision.
func printDecision(w io.Writer, data []byte, asJSON bool) error {
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
		w.Write(append(bytes.TrimSpace(data), '\n'))
	} else {
		verdict := "allowed"
		if !d.Allowed {
			verdict = "denied"
		}
		fmt.Fprintf(w, "%s: policy %s, limit %s, remaining %d", verdict, d.Policy, limitText(d.LimitName, d.Limit), d.Remaining)
		if !d.Allowed {
			fmt.Fprintf(w, ", retry after %v", time.Duration(d.RetryAfterMS)*time.Millisecond)
		}
		fmt.Fprintf(w, ", full again in %v", time.Duration(d.ResetAfterMS)*time.Millisecond)
		if d.Shadow {
			fmt.Fprint(w, " (shadow policy: would have denied)")
		}
		if d.Source != "" {
			fmt.Fprintf(w, " (decided by %s)", d.Source)
		}
		fmt.Fprintln(w)
	}
	if !d.Allowed {
		return &ExitError{Code: exitDenied}
	}
	return nil
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
