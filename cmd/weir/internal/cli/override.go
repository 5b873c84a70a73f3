package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/weir-go/weir/server/tlsconf"
)

// adminClient is what the override subcommands share: the server, its
// token and TLS files (the flags of weir check).
type adminClient struct {
	server, token string
	tls           tlsconf.ClientFiles
	timeout       time.Duration
	asJSON        bool
}

func (c *adminClient) flags(cmd *cobra.Command) {
	f := cmd.PersistentFlags()
	f.StringVar(&c.server, "server", "http://127.0.0.1:8080", "server URL")
	f.StringVar(&c.token, "token", "env:WEIR_ADMIN", "admin bearer token (env:NAME reads $NAME)")
	f.BoolVar(&c.asJSON, "json", false, "print the server's JSON answer")
	f.DurationVar(&c.timeout, "timeout", 5*time.Second, "request timeout")
	f.StringVar(&c.tls.CA, "ca", "", "PEM CA certificates trusted for an https:// server (default: the system's roots)")
	f.StringVar(&c.tls.Cert, "cert", "", "PEM client certificate, for a server that requires one (mutual TLS)")
	f.StringVar(&c.tls.Key, "cert-key", "", "PEM private key of --cert (--key is the rate-limit key)")
}

// do sends one request to path (body nil: GET) and returns the answer of
// a 200, or an *ExitError: exitUsage for a bad flag, exitRefused for a
// 4xx, exitNoDecision when the server could not answer.
func (c *adminClient) do(ctx context.Context, path string, body any) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	useTLS := c.tls != (tlsconf.ClientFiles{})
	u := strings.TrimRight(c.server, "/") + path
	if !strings.Contains(c.server, "://") {
		if useTLS {
			u = "https://" + u
		} else {
			u = "http://" + u
		}
	}
	client := http.DefaultClient
	if useTLS {
		cfg, err := tlsconf.ClientConfig(c.tls)
		if fe, ok := errors.AsType[*tlsconf.FileError](err); ok {
			flag := map[string]string{tlsconf.FieldCA: "--ca", tlsconf.FieldCert: "--cert", tlsconf.FieldKey: "--cert-key"}[fe.Field]
			if fe.File != "" {
				flag += " " + fe.File
			}
			return nil, &ExitError{Code: exitUsage, Err: fmt.Errorf("%s: %w", flag, fe.Err)}
		}
		if err != nil {
			return nil, &ExitError{Code: exitUsage, Err: err}
		}
		if !strings.HasPrefix(u, "https://") {
			return nil, &ExitError{Code: exitUsage, Err: fmt.Errorf("--ca, --cert and --cert-key need an https:// --server, not %s", c.server)}
		}
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = cfg
		defer tr.CloseIdleConnections()
		client = &http.Client{Transport: tr}
	}
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
		return nil, &ExitError{Code: code, Err: fmt.Errorf("server answered %s: %s", resp.Status, msg)}
	}
	return data, nil
}

// overrideJSON is an override as the server answers it.
type overrideJSON struct {
	Policy  string   `json:"policy"`
	Key     string   `json:"key"`
	Plan    string   `json:"plan"`
	Limits  []string `json:"limits"`
	Expires string   `json:"expires"`
	Reason  string   `json:"reason"`
	By      string   `json:"by"`
	Updated string   `json:"updated"`
}

func (o overrideJSON) what() string {
	if o.Plan != "" {
		return "plan " + o.Plan
	}
	return "limits " + strings.Join(o.Limits, ", ")
}

func (o overrideJSON) until() string {
	if o.Expires == "" {
		return "no end"
	}
	return "until " + o.Expires
}

func overrideUsage(format string, args ...any) error {
	return &ExitError{Code: exitUsage, Err: fmt.Errorf(format, args...)}
}

func overrideNoArgs(cmd *cobra.Command, args []string) error {
	if err := cobra.NoArgs(cmd, args); err != nil {
		return &ExitError{Code: exitUsage, Err: err}
	}
	return nil
}

func overrideCommand(stdio IO) *cobra.Command {
	c := &adminClient{}
	cmd := &cobra.Command{
		Use:   "override set|get|list|delete",
		Short: "Set, show and delete per-key overrides on a running weir server",
		Long: `Give one key of a policy another plan or explicit limits at runtime,
optionally for a while, and list or delete such overrides. The server keeps
them in its store: with Redis every weir serve on it applies a change within
about a second. They need an admin token (--token, default $WEIR_ADMIN).

Exit status:
  0  done
  2  bad usage: a flag, its value, or a TLS file
  3  the server refused the request (4xx: an unknown policy or plan, a bad
     limit, no such override, a missing or non-admin token)
  4  the server could not be reached, did not answer in time, or failed`,
		Args: overrideNoArgs,
	}
	c.flags(cmd)
	cmd.AddCommand(overrideSet(stdio, c), overrideGet(stdio, c), overrideList(stdio, c), overrideDelete(stdio, c))
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &ExitError{Code: exitUsage, Err: err} })
	return cmd
}

// keyFlags are the flags that name a policy's key, as weir check has them.
type keyFlags struct {
	policy, key string
	fields      map[string]string
}

func (k *keyFlags) add(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&k.policy, "policy", "", "policy name (required)")
	f.StringVar(&k.key, "key", "", "key (required)")
	f.StringToStringVar(&k.fields, "field", nil, "template field NAME=VALUE (repeatable)")
}

func (k *keyFlags) check() error {
	if k.policy == "" {
		return overrideUsage(`required flag "policy" not set`)
	}
	if k.key == "" {
		return overrideUsage(`required flag "key" not set`)
	}
	return nil
}

func (k *keyFlags) body() map[string]any {
	b := map[string]any{"policy": k.policy, "key": k.key}
	if len(k.fields) > 0 {
		b["fields"] = k.fields
	}
	return b
}

func printOverride(w io.Writer, c *adminClient, data []byte) error {
	if c.asJSON {
		_, err := w.Write(append(bytes.TrimSpace(data), '\n'))
		return err
	}
	var o overrideJSON
	if err := json.Unmarshal(data, &o); err != nil {
		return &ExitError{Code: exitNoDecision, Err: fmt.Errorf("bad answer from server: %v", err)}
	}
	fmt.Fprintf(w, "%s %q: %s, %s", o.Policy, o.Key, o.what(), o.until())
	if o.Reason != "" {
		fmt.Fprintf(w, ", reason %q", o.Reason)
	}
	if o.By != "" {
		fmt.Fprintf(w, ", by %s", o.By)
	}
	fmt.Fprintln(w)
	return nil
}

func overrideSet(stdio IO, c *adminClient) *cobra.Command {
	var k keyFlags
	var plan, reason, by string
	var limits []string
	var dur time.Duration
	cmd := &cobra.Command{
		Use:   "set --policy P --key K (--plan NAME | --limit TEXT ...) [--for DURATION] [--reason TEXT]",
		Short: "Give a key another plan or explicit limits",
		Args:  overrideNoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := k.check(); err != nil {
				return err
			}
			if (plan == "") == (len(limits) == 0) {
				return overrideUsage("give --plan NAME or --limit TEXT (repeatable), not both")
			}
			if dur < 0 {
				return overrideUsage("--for %v: must not be negative", dur)
			}
			b := k.body()
			if plan != "" {
				b["plan"] = plan
			} else {
				b["limits"] = limits
			}
			if dur > 0 {
				b["for_ms"] = max(dur.Milliseconds(), 1)
			}
			b["reason"], b["by"] = reason, by
			data, err := c.do(cmd.Context(), "/v1/override", b)
			if err != nil {
				return err
			}
			return printOverride(stdio.Stdout, c, data)
		},
	}
	k.add(cmd)
	f := cmd.Flags()
	f.StringVar(&plan, "plan", "", "a plan of the server's configuration")
	f.StringArrayVar(&limits, "limit", nil, `explicit limit, e.g. "100/s burst=200" (repeatable)`)
	f.DurationVar(&dur, "for", 0, "end the override after this long (default: until deleted)")
	f.StringVar(&reason, "reason", "", "why (logged and listed)")
	f.StringVar(&by, "by", os.Getenv("USER"), "who (logged and listed)")
	return cmd
}

func overrideGet(stdio IO, c *adminClient) *cobra.Command {
	var k keyFlags
	cmd := &cobra.Command{
		Use:   "get --policy P --key K",
		Short: "Show a key's override",
		Args:  overrideNoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := k.check(); err != nil {
				return err
			}
			data, err := c.do(cmd.Context(), "/v1/override/get", k.body())
			if err != nil {
				return err
			}
			return printOverride(stdio.Stdout, c, data)
		},
	}
	k.add(cmd)
	return cmd
}

func overrideDelete(stdio IO, c *adminClient) *cobra.Command {
	var k keyFlags
	var reason, by string
	cmd := &cobra.Command{
		Use:   "delete --policy P --key K [--reason TEXT]",
		Short: "Delete a key's override: it goes back to its plan",
		Args:  overrideNoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := k.check(); err != nil {
				return err
			}
			b := k.body()
			b["reason"], b["by"] = reason, by
			data, err := c.do(cmd.Context(), "/v1/override/delete", b)
			if err != nil {
				return err
			}
			if c.asJSON {
				_, err = stdio.Stdout.Write(append(bytes.TrimSpace(data), '\n'))
				return err
			}
			fmt.Fprintf(stdio.Stdout, "%s %q: override deleted\n", k.policy, k.key)
			return nil
		},
	}
	k.add(cmd)
	cmd.Flags().StringVar(&reason, "reason", "", "why (logged)")
	cmd.Flags().StringVar(&by, "by", os.Getenv("USER"), "who (logged)")
	return cmd
}

func overrideList(stdio IO, c *adminClient) *cobra.Command {
	var policy string
	cmd := &cobra.Command{
		Use:   "list [--policy P]",
		Short: "List the live overrides",
		Args:  overrideNoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			path := "/v1/overrides"
			if policy != "" {
				path += "?policy=" + url.QueryEscape(policy)
			}
			data, err := c.do(cmd.Context(), path, nil)
			if err != nil {
				return err
			}
			if c.asJSON {
				_, err = stdio.Stdout.Write(append(bytes.TrimSpace(data), '\n'))
				return err
			}
			var out struct{ Overrides []overrideJSON }
			if err := json.Unmarshal(data, &out); err != nil {
				return &ExitError{Code: exitNoDecision, Err: fmt.Errorf("bad answer from server: %v", err)}
			}
			if len(out.Overrides) == 0 {
				fmt.Fprintln(stdio.Stdout, "no overrides")
				return nil
			}
			tw := tabwriter.NewWriter(stdio.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "POLICY\tKEY\tOVERRIDE\tEXPIRES\tREASON\tBY")
			for _, o := range out.Overrides {
				exp := o.Expires
				if exp == "" {
					exp = "never"
				}
				fmt.Fprintf(tw, "%s\t%q\t%s\t%s\t%s\t%s\n", o.Policy, o.Key, o.what(), exp, o.Reason, o.By)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&policy, "policy", "", "only this policy's overrides")
	return cmd
}
