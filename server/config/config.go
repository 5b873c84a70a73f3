package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/weir-go/weir"
	"go.yaml.in/yaml/v3"
)

// MaxFileSize is the largest configuration file read (1 MiB).
const MaxFileSize = 1 << 20

// MaxKeyLength is the largest rendered key, in bytes (S3).
const MaxKeyLength = 256

// A Config is a validated server configuration.
type Config struct {
	// Source is the file the configuration came from ("" for built-ins).
	Source string
	// Server holds listener, store and auth settings; flags override them.
	Server Server
	// Policies are the named policies, sorted by name.
	Policies []Policy
	// Plans are the named sets of limits (tiers) that policies choose per
	// key and overrides name, sorted by name. Their limits keep the names
	// given in the file; unnamed ones are named per policy by
	// weir.NameLimits, so a key's state carries over between plans.
	Plans []weir.Plan
	// PlanLines holds, by plan name, each plan limit's line in the file
	// (for later checks to name it).
	PlanLines map[string][]int
	// Envoy holds the envoyproxy/ratelimit domains, sorted by domain.
	Envoy []Domain
	// EnvoyShadowMode answers OK to every Envoy request while still
	// counting, like the reference server's SHADOW_MODE=true.
	EnvoyShadowMode bool
	// EnvoyQuotaMode treats every Envoy descriptor as a quota descriptor,
	// like the reference server's QUOTA_MODE=true (see
	// Descriptor.QuotaMode).
	EnvoyQuotaMode bool
	// EnvoyHeaders adds RateLimit-* headers to Envoy responses, like the
	// reference's LIMIT_RESPONSE_HEADERS_ENABLED.
	EnvoyHeaders EnvoyHeaders
	// EnvoyFiles are the envoy descriptor files that were read, so the
	// server can watch them for changes.
	EnvoyFiles []string
}

// Server holds the settings of the server section. Empty strings mean the
// flag default.
type Server struct {
	HTTP  string `yaml:"http"`  // HTTP listen address
	GRPC  string `yaml:"grpc"`  // gRPC listen address
	Debug string `yaml:"debug"` // pprof listen address (loopback only)
	Store string `yaml:"store"` // store URL
	// Tokens are bearer tokens accepted on the decision APIs.
	Tokens []string `yaml:"tokens"`
	// AdminTokens are bearer tokens accepted everywhere, including the
	// admin operations (reset, reload).
	AdminTokens []string `yaml:"admin_tokens"`
	// MetricsTokens, when any is set, protect GET /metrics: a scrape then
	// needs one of them or an admin token. Without them /metrics is open
	// (it shows policy names, Envoy domains and counts, never a key).
	MetricsTokens []string `yaml:"metrics_tokens"`
	// TLS names the PEM files of the listeners' TLS. The --tls-* flags,
	// when any is given, replace the whole section.
	TLS TLS `yaml:"tls"`
	// FallbackInstances is the least number of weir serve instances
	// assumed to share the store when policies with on_store_error:
	// fallback decide locally: each divides its limits by the larger of it
	// and the live instances it last counted in Redis (package peers).
	// 0 means 1.
	FallbackInstances int64 `yaml:"fallback_instances"`
}

// TLS names the PEM files that put both listeners on TLS: Cert and Key
// together, and with ClientCA mutual TLS. Relative paths are resolved
// against the configuration file's directory. The files are re-read when
// they change; the paths themselves take effect on restart.
type TLS struct {
	Cert     string `yaml:"cert"`      // certificate, followed by its intermediates
	Key      string `yaml:"key"`       // the certificate's private key
	ClientCA string `yaml:"client_ca"` // authorities of accepted client certificates
}

// Enabled reports whether any file is named.
func (t TLS) Enabled() bool { return t.Cert != "" || t.Key != "" || t.ClientCA != "" }

// Check reports a certificate without its key, a key without its
// certificate, and a client CA without either. name gives each field's
// name in the message: it maps "cert", "key" and "client-ca" to, say,
// "--tls-cert" or "server.tls.cert".
func (t TLS) Check(name func(field string) string) error {
	switch {
	case t.Cert == "" && t.Key == "" && t.ClientCA != "":
		return fmt.Errorf("%s needs %s and %s: client certificates are verified by the TLS listeners", name("client-ca"), name("cert"), name("key"))
	case t.Key == "" && t.Cert != "":
		return fmt.Errorf("%s %s needs %s (the certificate's private key)", name("cert"), t.Cert, name("key"))
	case t.Cert == "" && t.Key != "":
		return fmt.Errorf("%s %s needs %s (the certificate it belongs to)", name("key"), t.Key, name("cert"))
	}
	return nil
}

// A Policy is a named set of limits applied to keys.
type Policy struct {
	// Name is the policy's name, used by callers.
	Name string
	// Limits are the policy's limits, all applied at once (a request is
	// admitted only if all admit). Each Name is the short name given in the
	// config or the limit's text form.
	Limits []weir.Limit
	// LimitLines holds each limit's line in the configuration file (0 for
	// built-in text), so that a later check can name it.
	LimitLines []int
	// Key renders the state key from a caller's key and fields.
	Key *Template
	// Shadow evaluates and counts, but always answers allowed.
	Shadow bool
	// OnError is what to do when the store fails.
	OnError OnError
	// Description is free text shown by GET /v1/policies.
	Description string
	// Local, when set, makes the policy decide from local allowances
	// taken from the store in blocks (package localquota).
	Local *Local
	// Plans, when set, makes the policy choose its limits per key from
	// the configuration's plans; Limits are then the default plan's.
	Plans *PolicyPlans
}

// PolicyPlans is a policy's plans: section.
type PolicyPlans struct {
	// Default is the plan of keys not listed in Keys (and without an
	// override).
	Default string
	// Keys maps a state key (the rendered key template) to its plan.
	Keys map[string]string
}

// ReservedPlan is the plan name under which a policy without plans:
// offers its own limits to overrides; no plan in the file may use it.
const ReservedPlan = "limits"

// Plan returns the plan named name.
func (c *Config) Plan(name string) (*weir.Plan, bool) {
	i, ok := slices.BinarySearchFunc(c.Plans, name, func(p weir.Plan, n string) int { return strings.Compare(p.Name, n) })
	if !ok {
		return nil, false
	}
	return &c.Plans[i], true
}

// Local is a policy's local quota (YAML "local:"): see docs/localquota.md.
type Local struct {
	// Hold is L, the longest a block is held (YAML "hold"; default
	// 100ms, at most 1m).
	Hold time.Duration
	// Optimistic, when positive, selects the optimistic mode with this
	// sync interval (YAML "optimistic"; at most 1m).
	Optimistic time.Duration
}

// OnError is a policy's answer when its store fails.
type OnError uint8

// The store-failure modes.
const (
	// OnErrorFail answers the caller with an error (503 / UNAVAILABLE).
	OnErrorFail OnError = iota
	// OnErrorAllow admits (fail open).
	OnErrorAllow
	// OnErrorDeny denies (fail closed).
	OnErrorDeny
	// OnErrorFallback decides with a local in-memory limiter.
	OnErrorFallback
)

var onErrorNames = [...]string{"error", "allow", "deny", "fallback"}

// String returns the mode's config name.
func (o OnError) String() string {
	if int(o) < len(onErrorNames) {
		return onErrorNames[o]
	}
	return "OnError(" + strconv.Itoa(int(o)) + ")"
}

// Policy returns the policy named name.
func (c *Config) Policy(name string) (*Policy, bool) {
	i, ok := slices.BinarySearchFunc(c.Policies, name, func(p Policy, n string) int { return strings.Compare(p.Name, n) })
	if !ok {
		return nil, false
	}
	return &c.Policies[i], true
}

// An Error is a configuration error located in a file.
type Error struct {
	File string // the file, or "" for built-in text
	Line int    // 1-based; 0 when unknown
	Msg  string
}

// Error returns "file:line: message".
func (e *Error) Error() string {
	file := e.File
	if file == "" {
		file = "<config>"
	}
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", file, e.Line, e.Msg)
	}
	return file + ": " + e.Msg
}

// raw mirrors the YAML file.
type raw struct {
	Server   Server               `yaml:"server"`
	Policies yaml.Node            `yaml:"policies"`
	Plans    yaml.Node            `yaml:"plans"`
	Envoy    *rawEnvoy            `yaml:"envoy"`
	Extra    map[string]yaml.Node `yaml:",inline"`
}

type rawEnvoy struct {
	Files           []yaml.Node   `yaml:"files"`
	ShadowMode      bool          `yaml:"shadow_mode"`
	QuotaMode       bool          `yaml:"quota_mode"`
	ResponseHeaders *EnvoyHeaders `yaml:"response_headers"`
}

// EnvoyHeaders are the response headers the Envoy service adds to every
// answer with a limit (the reference's LIMIT_RESPONSE_HEADERS_ENABLED,
// LIMIT_LIMIT_HEADER, LIMIT_REMAINING_HEADER, LIMIT_RESET_HEADER): the
// limit, the units left and the seconds until the window resets, of the
// descriptor closest to its limit. Empty names mean the reference's
// defaults.
type EnvoyHeaders struct {
	Enabled   bool   `yaml:"enabled"`
	Limit     string `yaml:"limit"`
	Remaining string `yaml:"remaining"`
	Reset     string `yaml:"reset"`
	line      int
}

// UnmarshalYAML records the line, then decodes strictly.
func (h *EnvoyHeaders) UnmarshalYAML(n *yaml.Node) error {
	type plain EnvoyHeaders
	if n.Kind == yaml.MappingNode {
		if err := checkKeys("", n, (*plain)(h)); err != nil {
			return err
		}
	}
	if err := n.Decode((*plain)(h)); err != nil {
		return err
	}
	h.line = n.Line
	return nil
}

// LimitHeader is the name of the limit header (default RateLimit-Limit).
func (h EnvoyHeaders) LimitHeader() string { return or(h.Limit, "RateLimit-Limit") }

// RemainingHeader is the name of the remaining-units header (default
// RateLimit-Remaining).
func (h EnvoyHeaders) RemainingHeader() string { return or(h.Remaining, "RateLimit-Remaining") }

// ResetHeader is the name of the reset header (default RateLimit-Reset).
func (h EnvoyHeaders) ResetHeader() string { return or(h.Reset, "RateLimit-Reset") }

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// validToken reports whether s is an HTTP header name (an RFC 9110 token).
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

type rawPolicy struct {
	Limits      []yaml.Node `yaml:"limits"`
	Limit       yaml.Node   `yaml:"limit"`
	Key         string      `yaml:"key"`
	Shadow      bool        `yaml:"shadow"`
	OnError     string      `yaml:"on_store_error"`
	Description string      `yaml:"description"`
	Local       yaml.Node   `yaml:"local"`
	Plans       yaml.Node   `yaml:"plans"`
}

type rawPlans struct {
	Default string            `yaml:"default"`
	Keys    map[string]string `yaml:"keys"`
}

type rawLocal struct {
	Hold       string `yaml:"hold"`
	Optimistic string `yaml:"optimistic"`
}

// Load reads and validates the configuration file at path. Envoy files
// named in it are resolved relative to its directory.
func Load(path string) (*Config, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &Error{File: path, Msg: err.Error()}
	}
	defer f.Close()
	// S13: a file anyone may write could grant anyone any limit.
	if st, err := f.Stat(); err == nil && st.Mode().Perm()&0o002 != 0 {
		return nil, &Error{File: path, Msg: fmt.Sprintf("is writable by every user (mode %v): run chmod o-w", st.Mode().Perm())}
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, &Error{File: path, Msg: err.Error()}
	}
	if len(data) > MaxFileSize {
		return nil, &Error{File: path, Msg: fmt.Sprintf("larger than %d bytes", MaxFileSize)}
	}
	return data, nil
}

// Parse validates configuration text; file names it in errors and anchors
// relative envoy file paths.
func Parse(file string, data []byte) (*Config, error) {
	var r raw
	if err := decodeStrict(file, data, &r); err != nil {
		return nil, err
	}
	for k, v := range r.Extra {
		return nil, &Error{File: file, Line: v.Line, Msg: fmt.Sprintf("unknown key %q (want server, plans, policies or envoy)", k)}
	}
	c := &Config{Source: file, Server: r.Server}
	if err := checkServer(file, &c.Server); err != nil {
		return nil, err
	}
	if err := parsePlans(file, &r.Plans, c); err != nil {
		return nil, err
	}
	if err := parsePolicies(file, &r.Policies, c); err != nil {
		return nil, err
	}
	if r.Envoy != nil {
		c.EnvoyShadowMode = r.Envoy.ShadowMode
		c.EnvoyQuotaMode = r.Envoy.QuotaMode
		if h := r.Envoy.ResponseHeaders; h != nil {
			for _, f := range []struct{ key, v string }{{"limit", h.Limit}, {"remaining", h.Remaining}, {"reset", h.Reset}} {
				if f.v != "" && !validToken(f.v) {
					return nil, &Error{File: file, Line: h.line, Msg: fmt.Sprintf("envoy.response_headers.%s: %q is not a header name", f.key, f.v)}
				}
			}
			c.EnvoyHeaders = *h
		}
		base := filepath.Dir(file)
		var paths []string
		for i, n := range r.Envoy.Files {
			if n.Kind != yaml.ScalarNode || n.Value == "" {
				return nil, &Error{File: file, Line: n.Line, Msg: fmt.Sprintf("envoy.files[%d]: want a file or directory path", i)}
			}
			p := n.Value
			if !filepath.IsAbs(p) && file != "" {
				p = filepath.Join(base, p)
			}
			// A path that cannot be read is this file's error: name it,
			// its line and the key, not only the missing path.
			if _, err := os.Stat(p); err != nil {
				return nil, &Error{File: file, Line: n.Line, Msg: fmt.Sprintf("envoy.files[%d] %q: %v", i, n.Value, errors.Unwrap(err))}
			}
			paths = append(paths, p)
		}
		domains, files, err := LoadEnvoy(paths...)
		if err != nil {
			return nil, err
		}
		c.Envoy, c.EnvoyFiles = domains, files
	}
	return c, nil
}

func checkServer(file string, s *Server) error {
	if s.FallbackInstances < 0 || s.FallbackInstances > 1_000_000 {
		return &Error{File: file, Msg: fmt.Sprintf("server.fallback_instances: %d is not in 0..1000000", s.FallbackInstances)}
	}
	var err error
	if s.Tokens, err = Tokens(s.Tokens); err != nil {
		return &Error{File: file, Msg: "server tokens: " + err.Error()}
	}
	if s.AdminTokens, err = Tokens(s.AdminTokens); err != nil {
		return &Error{File: file, Msg: "server admin_tokens: " + err.Error()}
	}
	if s.MetricsTokens, err = Tokens(s.MetricsTokens); err != nil {
		return &Error{File: file, Msg: "server metrics_tokens: " + err.Error()}
	}
	t := &s.TLS
	if err := t.Check(func(field string) string { return "server.tls." + strings.ReplaceAll(field, "-", "_") }); err != nil {
		return &Error{File: file, Msg: err.Error()}
	}
	for _, p := range []*string{&t.Cert, &t.Key, &t.ClientCA} {
		if *p != "" && !filepath.IsAbs(*p) && file != "" {
			*p = filepath.Join(filepath.Dir(file), *p)
		}
	}
	return nil
}

// MinTokenLength is the shortest bearer token accepted.
const MinTokenLength = 16

// Tokens resolves bearer tokens: "env:NAME" reads $NAME. Every token must
// be at least MinTokenLength characters.
func Tokens(ts []string) ([]string, error) {
	out := make([]string, 0, len(ts))
	for i, t := range ts {
		if name, ok := strings.CutPrefix(t, "env:"); ok {
			t = os.Getenv(name)
			if t == "" {
				return nil, fmt.Errorf("[%d]: $%s is empty or unset", i, name)
			}
		}
		if len(t) < MinTokenLength {
			return nil, fmt.Errorf("[%d]: a token must be at least %d characters", i, MinTokenLength)
		}
		out = append(out, t)
	}
	return out, nil
}

var unknownField = regexp.MustCompile(`line (\d+): field (\S+) not found in type \S+`)
var lineRe = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// decodeStrict decodes one YAML document with unknown keys rejected, and
// rewrites the decoder's errors as *Error naming file, line and key.
func decodeStrict(file string, data []byte, v any) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return nil // empty file: all defaults
		}
		var root yaml.Node
		_ = yaml.Unmarshal(data, &root)
		return yamlError(file, err, &root, "")
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return &Error{File: file, Line: extra.Line, Msg: "more than one YAML document"}
	}
	return nil
}

// yamlError rewrites a decoding error as an *Error. root is the node that
// was decoded (nil when unknown) and prefix its key path, so that a type
// error names the key whose value has the wrong type.
func yamlError(file string, err error, root *yaml.Node, prefix string) error {
	var ce *Error
	if errors.As(err, &ce) {
		if ce.File == "" {
			ce.File = file
		}
		return ce
	}
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		msg := te.Errors[0]
		if m := unknownField.FindStringSubmatch(msg); m != nil {
			line, _ := strconv.Atoi(m[1])
			return &Error{File: file, Line: line, Msg: fmt.Sprintf("unknown key %q", m[2])}
		}
		if m := lineRe.FindStringSubmatch(msg); m != nil {
			line, _ := strconv.Atoi(m[1])
			return &Error{File: file, Line: line, Msg: typeMessage(root, prefix, line, m[2])}
		}
		return &Error{File: file, Msg: msg}
	}
	if m := lineRe.FindStringSubmatch(err.Error()); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &Error{File: file, Line: line, Msg: m[2]}
	}
	return &Error{File: file, Msg: strings.TrimPrefix(err.Error(), "yaml: ")}
}

func parsePolicies(file string, n *yaml.Node, c *Config) error {
	if n.Kind == 0 {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		return &Error{File: file, Line: n.Line, Msg: "policies must be a mapping of policy names to policies"}
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		kn, vn := n.Content[i], n.Content[i+1]
		name := kn.Value
		if !validName(name) {
			return &Error{File: file, Line: kn.Line, Msg: fmt.Sprintf("policy name %q: use letters, digits, '.', '_' or '-' (1 to 64 characters)", name)}
		}
		if seen[name] {
			return &Error{File: file, Line: kn.Line, Msg: fmt.Sprintf("duplicate policy %q", name)}
		}
		seen[name] = true
		var rp rawPolicy
		if err := decodeNodeStrict(file, vn, &rp, "policies."+name); err != nil {
			return err
		}
		p, err := buildPolicy(file, name, vn.Line, &rp, c)
		if err != nil {
			return err
		}
		c.Policies = append(c.Policies, p)
	}
	sort.Slice(c.Policies, func(i, j int) bool { return c.Policies[i].Name < c.Policies[j].Name })
	return nil
}

// decodeNodeStrict decodes a node with unknown keys rejected (yaml.v3's
// Node.Decode does not honour KnownFields, so the keys are checked first).
// path is the node's key path, for type errors.
func decodeNodeStrict(file string, n *yaml.Node, v any, path string) error {
	if n.Kind == yaml.MappingNode {
		if err := checkKeys(file, n, v); err != nil {
			return err
		}
	}
	if err := n.Decode(v); err != nil {
		return yamlError(file, err, n, path)
	}
	return nil
}

// checkKeys rejects mapping keys that v's struct does not declare.
func checkKeys(file string, n *yaml.Node, v any) error {
	allowed := yamlKeys(v)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		if !slices.Contains(allowed, k.Value) {
			return &Error{File: file, Line: k.Line, Msg: fmt.Sprintf("unknown key %q (want %s)", k.Value, strings.Join(allowed, ", "))}
		}
	}
	return nil
}

func validName(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

type rawLimit struct {
	Name      string `yaml:"name"`
	Quota     int64  `yaml:"quota"`
	Period    string `yaml:"period"`
	Burst     int64  `yaml:"burst"`
	Algorithm string `yaml:"algorithm"`
}

func buildPolicy(file, name string, line int, rp *rawPolicy, c *Config) (Policy, error) {
	p := Policy{Name: name, Shadow: rp.Shadow, Description: rp.Description}
	nodes := rp.Limits
	if rp.Limit.Kind != 0 {
		if len(nodes) > 0 {
			return p, &Error{File: file, Line: rp.Limit.Line, Msg: fmt.Sprintf("policy %q: give either limit or limits, not both", name)}
		}
		nodes = []yaml.Node{rp.Limit}
	}
	if rp.Plans.Kind != 0 {
		if len(nodes) > 0 {
			return p, &Error{File: file, Line: line, Msg: fmt.Sprintf("policies.%s: give either limits or plans, not both (the default plan's limits are the policy's)", name)}
		}
		var rpl rawPlans
		if rp.Plans.Kind != yaml.MappingNode {
			return p, &Error{File: file, Line: rp.Plans.Line, Msg: fmt.Sprintf("policies.%s.plans: want a mapping {default: PLAN, keys: {KEY: PLAN}}", name)}
		}
		if err := decodeNodeStrict(file, &rp.Plans, &rpl, "policies."+name+".plans"); err != nil {
			return p, err
		}
		if err := buildPolicyPlans(file, rp.Plans.Line, &p, &rpl, c); err != nil {
			return p, err
		}
		nodes = nil
	} else if len(nodes) == 0 {
		return p, &Error{File: file, Line: line, Msg: fmt.Sprintf("policy %q: at least one limit is needed (limits: [\"100/s\"])", name)}
	}
	names := map[string]bool{}
	for i := range nodes {
		n := &nodes[i]
		l, err := parseLimitNode(file, n, fmt.Sprintf("policies.%s.limits[%d]", name, i))
		if err != nil {
			return p, err
		}
		l = l.Named()
		if names[l.Name] {
			return p, &Error{File: file, Line: n.Line, Msg: fmt.Sprintf("policy %q: duplicate limit name %q", name, l.Name)}
		}
		names[l.Name] = true
		p.Limits = append(p.Limits, l)
		p.LimitLines = append(p.LimitLines, n.Line)
	}
	tmpl := rp.Key
	if tmpl == "" {
		tmpl = "{key}"
	}
	t, err := ParseTemplate(tmpl)
	if err != nil {
		return p, &Error{File: file, Line: line, Msg: fmt.Sprintf("policy %q: key: %v", name, err)}
	}
	p.Key = t
	if rp.Local.Kind != 0 {
		l, err := parseLocal(file, name, &rp.Local)
		if err != nil {
			return p, err
		}
		p.Local = l
	}
	switch strings.ToLower(rp.OnError) {
	case "", "error":
		p.OnError = OnErrorFail
	case "allow", "open", "fail-open":
		p.OnError = OnErrorAllow
	case "deny", "closed", "fail-closed":
		p.OnError = OnErrorDeny
	case "fallback", "local":
		p.OnError = OnErrorFallback
	default:
		return p, &Error{File: file, Line: line, Msg: fmt.Sprintf("policy %q: on_store_error %q: want error, allow, deny or fallback", name, rp.OnError)}
	}
	return p, nil
}

// parseLocal reads a policy's local: section ({} for the defaults).
func parseLocal(file, name string, n *yaml.Node) (*Local, error) {
	if n.Kind != yaml.MappingNode {
		return nil, &Error{File: file, Line: n.Line, Msg: fmt.Sprintf("policy %q: local: want a mapping ({hold: 100ms} or {optimistic: 10ms})", name)}
	}
	var rl rawLocal
	if err := decodeNodeStrict(file, n, &rl, "policies."+name+".local"); err != nil {
		return nil, err
	}
	l := &Local{Hold: 100 * time.Millisecond}
	for _, f := range []struct {
		field, text string
		to          *time.Duration
	}{{"hold", rl.Hold, &l.Hold}, {"optimistic", rl.Optimistic, &l.Optimistic}} {
		if f.text == "" {
			continue
		}
		d, err := time.ParseDuration(f.text)
		if err != nil || d <= 0 || d > time.Minute {
			return nil, &Error{File: file, Line: n.Line, Msg: fmt.Sprintf("policy %q: local.%s %q: want a duration from 1ns to 1m", name, f.field, f.text)}
		}
		*f.to = d
	}
	return l, nil
}

func parseLimitNode(file string, n *yaml.Node, path string) (weir.Limit, error) {
	switch n.Kind {
	case yaml.ScalarNode:
		l, err := weir.ParseLimit(n.Value)
		if err != nil {
			return l, &Error{File: file, Line: n.Line, Msg: fmt.Sprintf("limit %q: %v", n.Value, trimWeir(err))}
		}
		return l, nil
	case yaml.MappingNode:
		var rl rawLimit
		if err := decodeNodeStrict(file, n, &rl, path); err != nil {
			return weir.Limit{}, err
		}
		l := weir.Limit{Name: rl.Name, Quota: rl.Quota, Burst: rl.Burst}
		if rl.Algorithm != "" {
			a, err := weir.ParseAlgorithm(rl.Algorithm)
			if err != nil {
				return l, &Error{File: file, Line: n.Line, Msg: trimWeir(err)}
			}
			l.Algorithm = a
		}
		if rl.Period == "" {
			return l, &Error{File: file, Line: n.Line, Msg: "limit: period is required (e.g. period: 1m)"}
		}
		// Reuse ParseLimit's period grammar ("s", "15m", "1h30m").
		pl, err := weir.ParseLimit("1/" + rl.Period)
		if err != nil {
			return l, &Error{File: file, Line: n.Line, Msg: "limit: " + trimWeir(err)}
		}
		l.Period = pl.Period
		if err := l.Validate(); err != nil {
			return l, &Error{File: file, Line: n.Line, Msg: "limit: " + trimWeir(err)}
		}
		return l, nil
	}
	return weir.Limit{}, &Error{File: file, Line: n.Line, Msg: "a limit is text (\"100/s burst=200\") or a mapping {quota, period, burst, algorithm, name}"}
}

func trimWeir(err error) string { return strings.TrimPrefix(err.Error(), "weir: ") }

var cannotUnmarshal = regexp.MustCompile("^cannot unmarshal !!(\\w+)(?: `(.*)`)? into (\\S+)$")

// typeMessage rewrites yaml.v3's "cannot unmarshal !!str `x` into int64"
// as "policies.api.limits[0].quota: want a whole number, got text "x"",
// naming the key found at line under root.
func typeMessage(root *yaml.Node, prefix string, line int, msg string) string {
	m := cannotUnmarshal.FindStringSubmatch(msg)
	if m == nil {
		return msg
	}
	key, ok := keyAt(root, line, prefix)
	if !ok {
		key = prefix
	}
	got := map[string]string{"str": "text", "int": "a number", "float": "a number", "bool": "true/false", "map": "a mapping", "seq": "a list", "null": "nothing"}[m[1]]
	if got == "" {
		got = "!!" + m[1]
	}
	if m[2] != "" && m[1] != "map" && m[1] != "seq" {
		got += " " + strconv.Quote(m[2])
	}
	want := m[3]
	switch {
	case strings.HasPrefix(want, "[]"):
		want = "a list"
	case strings.HasPrefix(want, "map["), strings.HasPrefix(want, "config."), strings.HasPrefix(want, "struct"):
		want = "a mapping"
	case strings.HasPrefix(want, "int"), strings.HasPrefix(want, "uint"):
		want = "a whole number"
	case want == "bool":
		want = "true or false"
	case want == "string":
		want = "text"
	}
	if key == "" {
		return fmt.Sprintf("want %s, got %s", want, got)
	}
	return fmt.Sprintf("%s: want %s, got %s", key, want, got)
}

// keyAt returns the key path, below n (whose path is path), of the deepest
// value that starts on line.
func keyAt(n *yaml.Node, line int, path string) (string, bool) {
	if n == nil {
		return "", false
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) > 0 {
			return keyAt(n.Content[0], line, path)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := k.Value
			if path != "" {
				p = path + "." + k.Value
			}
			if deeper, ok := keyAt(v, line, p); ok {
				return deeper, true
			}
			if v.Line == line {
				return p, true
			}
		}
	case yaml.SequenceNode:
		for i, v := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			if deeper, ok := keyAt(v, line, p); ok {
				return deeper, true
			}
			if v.Line == line && v.Kind != yaml.ScalarNode {
				return p, true
			}
		}
	}
	return "", false
}

// MaxPlans is the most plans a configuration may define.
const MaxPlans = 256

// parsePlans reads the top-level plans: section, a mapping of plan names
// to limits (one limit, or a list, in the policies' limit syntax).
func parsePlans(file string, n *yaml.Node, c *Config) error {
	if n.Kind == 0 {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		return &Error{File: file, Line: n.Line, Msg: "plans must be a mapping of plan names to limits (plans: {free: [\"10/s\"]})"}
	}
	if len(n.Content)/2 > MaxPlans {
		return &Error{File: file, Line: n.Line, Msg: fmt.Sprintf("plans: at most %d plans", MaxPlans)}
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		kn, vn := n.Content[i], n.Content[i+1]
		name := kn.Value
		if !validName(name) {
			return &Error{File: file, Line: kn.Line, Msg: fmt.Sprintf("plans: plan name %q: use letters, digits, '.', '_' or '-' (1 to 64 characters)", name)}
		}
		if name == ReservedPlan {
			return &Error{File: file, Line: kn.Line, Msg: fmt.Sprintf("plans.%s: the name %q is reserved (a policy's own limits)", name, name)}
		}
		if seen[name] {
			return &Error{File: file, Line: kn.Line, Msg: fmt.Sprintf("plans: duplicate plan %q", name)}
		}
		seen[name] = true
		nodes := []*yaml.Node{vn}
		if vn.Kind == yaml.SequenceNode {
			nodes = vn.Content
		}
		if len(nodes) == 0 {
			return &Error{File: file, Line: vn.Line, Msg: fmt.Sprintf("plans.%s: at least one limit is needed", name)}
		}
		if len(nodes) > weir.MaxPlanLimits {
			return &Error{File: file, Line: vn.Line, Msg: fmt.Sprintf("plans.%s: at most %d limits", name, weir.MaxPlanLimits)}
		}
		plan := weir.Plan{Name: name}
		if c.PlanLines == nil {
			c.PlanLines = map[string][]int{}
		}
		names := map[string]bool{}
		for j, ln := range nodes {
			path := fmt.Sprintf("plans.%s[%d]", name, j)
			l, err := parseLimitNode(file, ln, path)
			if err != nil {
				return err
			}
			if l.Algorithm == weir.Concurrency {
				return &Error{File: file, Line: ln.Line, Msg: path + ": a plan holds rate limits only (concurrency limits stay in policies' limits)"}
			}
			if l.Name != "" && strings.ContainsAny(l.Name, " ,\t=") {
				return &Error{File: file, Line: ln.Line, Msg: fmt.Sprintf("%s: name %q: no spaces, commas or '='", path, l.Name)}
			}
			named := weir.NameLimits(nil, []weir.Limit{l})[0].Name
			if names[named] {
				return &Error{File: file, Line: ln.Line, Msg: fmt.Sprintf("%s: a second limit named %q: limits of the same period and algorithm need names (name: ...)", path, named)}
			}
			names[named] = true
			plan.Limits = append(plan.Limits, l)
			c.PlanLines[name] = append(c.PlanLines[name], ln.Line)
		}
		c.Plans = append(c.Plans, plan)
	}
	sort.Slice(c.Plans, func(i, j int) bool { return c.Plans[i].Name < c.Plans[j].Name })
	return nil
}

// buildPolicyPlans reads a policy's plans: section; the policy's limits
// become the default plan's, named as the policy's plan table names them.
func buildPolicyPlans(file string, line int, p *Policy, rp *rawPlans, c *Config) error {
	at := "policies." + p.Name + ".plans"
	def, ok := c.Plan(rp.Default)
	if rp.Default == "" {
		return &Error{File: file, Line: line, Msg: at + ".default: name the plan of keys without an entry (default: free)"}
	}
	if !ok {
		return &Error{File: file, Line: line, Msg: fmt.Sprintf("%s.default: no plan %q (plans: %s)", at, rp.Default, planNames(c))}
	}
	for k, name := range rp.Keys {
		if _, ok := c.Plan(name); !ok {
			return &Error{File: file, Line: line, Msg: fmt.Sprintf("%s.keys[%q]: no plan %q (plans: %s)", at, k, name, planNames(c))}
		}
		if k == "" || len(k) > MaxKeyLength {
			return &Error{File: file, Line: line, Msg: fmt.Sprintf("%s.keys: a key must be 1 to %d bytes", at, MaxKeyLength)}
		}
	}
	p.Plans = &PolicyPlans{Default: rp.Default, Keys: rp.Keys}
	p.Limits = weir.NameLimits(def.Limits, def.Limits)
	for range p.Limits {
		p.LimitLines = append(p.LimitLines, line)
	}
	// Every plan must name its limits apart under this policy's names.
	for _, pl := range c.Plans {
		seen := map[string]bool{}
		for _, l := range weir.NameLimits(def.Limits, pl.Limits) {
			if seen[l.Name] {
				return &Error{File: file, Line: line, Msg: fmt.Sprintf("%s: plan %q has two limits named %q under default plan %q: name them (name: ...)", at, pl.Name, l.Name, def.Name)}
			}
			seen[l.Name] = true
		}
	}
	return nil
}

func planNames(c *Config) string {
	if len(c.Plans) == 0 {
		return "none defined"
	}
	names := make([]string, len(c.Plans))
	for i, p := range c.Plans {
		names[i] = p.Name
	}
	return strings.Join(names, ", ")
}
