package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

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
	c := &apiClient{tokenDefault: "env:WEIR_ADMIN"}
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
	c.flags(cmd.PersistentFlags())
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

func printOverride(w io.Writer, c *apiClient, data []byte) error {
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

func overrideSet(stdio IO, c *apiClient) *cobra.Command {
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

func overrideGet(stdio IO, c *apiClient) *cobra.Command {
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

func overrideDelete(stdio IO, c *apiClient) *cobra.Command {
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

func overrideList(stdio IO, c *apiClient) *cobra.Command {
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
