package config

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Unit is an envoyproxy/ratelimit time unit; the values are those of
// envoy.service.ratelimit.v3.RateLimitResponse.RateLimit.Unit.
type Unit int32

// The units.
const (
	UnitUnknown Unit = 0
	UnitSecond  Unit = 1
	UnitMinute  Unit = 2
	UnitHour    Unit = 3
	UnitDay     Unit = 4
	UnitMonth   Unit = 5
	UnitYear    Unit = 6
	UnitWeek    Unit = 7
)

var unitNames = map[string]Unit{
	"SECOND": UnitSecond, "MINUTE": UnitMinute, "HOUR": UnitHour, "DAY": UnitDay,
	"WEEK": UnitWeek, "MONTH": UnitMonth, "YEAR": UnitYear,
}

// Seconds is the unit's window length in seconds, as the reference server
// counts it: a month is 30 days and a year 365 days.
func (u Unit) Seconds() int64 {
	switch u {
	case UnitSecond:
		return 1
	case UnitMinute:
		return 60
	case UnitHour:
		return 3600
	case UnitDay:
		return 86400
	case UnitWeek:
		return 7 * 86400
	case UnitMonth:
		return 30 * 86400
	case UnitYear:
		return 365 * 86400
	}
	return 0
}

// String returns the unit's upper-case name.
func (u Unit) String() string {
	for k, v := range unitNames {
		if v == u {
			return k
		}
	}
	return "UNKNOWN"
}

// ParseUnit parses a unit name, ignoring case.
func ParseUnit(s string) (Unit, bool) {
	u, ok := unitNames[strings.ToUpper(s)]
	return u, ok
}

// A Domain is one envoyproxy/ratelimit configuration file: a domain and its
// descriptor tree.
type Domain struct {
	Name string
	File string
	// Root holds the top-level descriptors as its children.
	Root *Descriptor
}

// A Descriptor is one node of the descriptor tree.
type Descriptor struct {
	Key   string
	Value string // "" matches any value; a trailing '*' is a prefix
	// Limit is nil when the node has no rate_limit.
	Limit      *EnvoyLimit
	ShadowMode bool
	// QuotaMode makes the node's limit a quota: a quota descriptor over
	// its limit makes the request over the limit only when every quota
	// descriptor of the request is over (the reference's quota_mode).
	QuotaMode      bool
	ShareThreshold bool
	Line           int
	// Children are indexed by [ChildIndex] of their key and value.
	Children map[string]*Descriptor
	// Wildcards are the children whose value ends in '*', in file order,
	// by their index key.
	Wildcards []string
}

// An EnvoyLimit is a descriptor's rate_limit.
type EnvoyLimit struct {
	RequestsPerUnit uint32
	Unit            Unit
	Unlimited       bool
	Name            string
	Replaces        []string
	// FullKey is "domain.key_value.key_value" naming the node.
	FullKey string
}

type rawDomain struct {
	Domain      string          `yaml:"domain"`
	Descriptors []rawDescriptor `yaml:"descriptors"`
}

type rawDescriptor struct {
	Key            string          `yaml:"key"`
	Value          string          `yaml:"value"`
	RateLimit      *rawRateLimit   `yaml:"rate_limit"`
	Descriptors    []rawDescriptor `yaml:"descriptors"`
	ShadowMode     bool            `yaml:"shadow_mode"`
	QuotaMode      bool            `yaml:"quota_mode"`
	DetailedMetric bool            `yaml:"detailed_metric"`
	ValueToMetric  bool            `yaml:"value_to_metric"`
	ShareThreshold bool            `yaml:"share_threshold"`
	Metadata       yaml.Node       `yaml:"metadata"`
	line           int
}

// UnmarshalYAML records the node's line, then decodes strictly.
func (d *rawDescriptor) UnmarshalYAML(n *yaml.Node) error {
	type plain rawDescriptor
	if n.Kind == yaml.MappingNode {
		if err := checkKeys("", n, (*plain)(d)); err != nil {
			return err
		}
	}
	if err := n.Decode((*plain)(d)); err != nil {
		return err
	}
	d.line = n.Line
	return nil
}

type rawRateLimit struct {
	RequestsPerUnit uint32        `yaml:"requests_per_unit"`
	Unit            string        `yaml:"unit"`
	Unlimited       bool          `yaml:"unlimited"`
	Name            string        `yaml:"name"`
	Replaces        []rawReplaces `yaml:"replaces"`
	line            int
}

// UnmarshalYAML records the node's line, then decodes strictly.
func (r *rawRateLimit) UnmarshalYAML(n *yaml.Node) error {
	type plain rawRateLimit
	if n.Kind == yaml.MappingNode {
		if err := checkKeys("", n, (*plain)(r)); err != nil {
			return err
		}
	}
	if err := n.Decode((*plain)(r)); err != nil {
		return err
	}
	r.line = n.Line
	return nil
}

type rawReplaces struct {
	Name string `yaml:"name"`
}

// UnmarshalYAML decodes strictly.
func (r *rawReplaces) UnmarshalYAML(n *yaml.Node) error {
	type plain rawReplaces
	if n.Kind == yaml.MappingNode {
		if err := checkKeys("", n, (*plain)(r)); err != nil {
			return err
		}
	}
	return n.Decode((*plain)(r))
}

// LoadEnvoy reads envoyproxy/ratelimit configuration files. Each path is a
// file or a directory whose *.yaml and *.yml files are read (not
// recursively). Domains must be unique across files. It returns the
// domains sorted by name and the files read.
func LoadEnvoy(paths ...string) ([]Domain, []string, error) {
	var files []string
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, nil, &Error{File: p, Msg: err.Error()}
		}
		if !st.IsDir() {
			files = append(files, p)
			continue
		}
		ents, err := os.ReadDir(p)
		if err != nil {
			return nil, nil, &Error{File: p, Msg: err.Error()}
		}
		for _, e := range ents {
			if ext := filepath.Ext(e.Name()); !e.IsDir() && (ext == ".yaml" || ext == ".yml") {
				files = append(files, filepath.Join(p, e.Name()))
			}
		}
	}
	var domains []Domain
	seen := map[string]string{}
	for _, f := range files {
		data, err := readFile(f)
		if err != nil {
			return nil, nil, err
		}
		d, err := ParseEnvoy(f, data)
		if err != nil {
			return nil, nil, err
		}
		if prev, ok := seen[d.Name]; ok {
			return nil, nil, &Error{File: f, Msg: fmt.Sprintf("duplicate domain %q (also in %s)", d.Name, prev)}
		}
		seen[d.Name] = f
		domains = append(domains, *d)
	}
	sort.Slice(domains, func(i, j int) bool { return domains[i].Name < domains[j].Name })
	return domains, files, nil
}

// ParseEnvoy parses one envoyproxy/ratelimit YAML file, with the
// reference server's rules: every key known, a domain, a key on every
// descriptor, no duplicate key/value at one level, a valid unit unless
// unlimited (and no unit when unlimited), named replacements.
func ParseEnvoy(file string, data []byte) (*Domain, error) {
	var r rawDomain
	if err := decodeStrict(file, data, &r); err != nil {
		return nil, fixFile(err, file)
	}
	if r.Domain == "" {
		return nil, &Error{File: file, Msg: "domain must not be empty"}
	}
	d := &Domain{Name: r.Domain, File: file, Root: &Descriptor{}}
	if err := buildDescriptors(file, r.Domain, d.Root, r.Descriptors); err != nil {
		return nil, err
	}
	return d, nil
}

func fixFile(err error, file string) error {
	if e, ok := err.(*Error); ok && (e.File == "" || e.File == "<config>") {
		e.File = file
	}
	return err
}

// ChildIndex is the index of a descriptor's child of key and value (""
// for a child that matches any value) in Descriptor.Children: key and
// value joined by a NUL, which neither may contain, so two distinct pairs
// never share an index. (The reference server joins them with '_', so
// that key "a_b" with value "c" and key "a" with value "b_c" are one
// child there, and an entry a=b finds the child of key "a_b".)
func ChildIndex(key, value string) string {
	return key + "\x00" + value
}

func buildDescriptors(file, parentKey string, parent *Descriptor, raws []rawDescriptor) error {
	for i := range raws {
		rd := &raws[i]
		if rd.Key == "" {
			return &Error{File: file, Line: rd.line, Msg: "descriptor has empty key"}
		}
		if strings.ContainsRune(rd.Key, 0) || strings.ContainsRune(rd.Value, 0) {
			return &Error{File: file, Line: rd.line, Msg: fmt.Sprintf("descriptor %q: key and value must not contain a NUL character", parentKey+"."+rd.Key)}
		}
		index := ChildIndex(rd.Key, rd.Value)
		// The full key names the descriptor in messages and statistics,
		// as the reference names it: key_value, or key.
		name := rd.Key
		if rd.Value != "" {
			name += "_" + rd.Value
		}
		fullKey := parentKey + "." + name
		if parent.Children == nil {
			parent.Children = map[string]*Descriptor{}
		}
		if _, dup := parent.Children[index]; dup {
			return &Error{File: file, Line: rd.line, Msg: fmt.Sprintf("duplicate descriptor composite key %q", fullKey)}
		}
		node := &Descriptor{Key: rd.Key, Value: rd.Value, ShadowMode: rd.ShadowMode, QuotaMode: rd.QuotaMode, ShareThreshold: rd.ShareThreshold, Line: rd.line}
		if rl := rd.RateLimit; rl != nil {
			l := &EnvoyLimit{RequestsPerUnit: rl.RequestsPerUnit, Unlimited: rl.Unlimited, Name: rl.Name, FullKey: fullKey}
			line := rl.line
			if line == 0 {
				line = rd.line
			}
			if rl.Unlimited {
				if rl.Unit != "" {
					return &Error{File: file, Line: line, Msg: fmt.Sprintf("descriptor %q: should not specify rate limit unit when unlimited", fullKey)}
				}
			} else {
				u, ok := ParseUnit(rl.Unit)
				if !ok {
					return &Error{File: file, Line: line, Msg: fmt.Sprintf("descriptor %q: invalid rate limit unit %q (want second, minute, hour, day, week, month or year)", fullKey, rl.Unit)}
				}
				l.Unit = u
			}
			for j, rep := range rl.Replaces {
				if rep.Name == "" {
					return &Error{File: file, Line: line, Msg: fmt.Sprintf("descriptor %q: replaces[%d] has an empty name", fullKey, j)}
				}
				if rep.Name == rl.Name {
					return &Error{File: file, Line: line, Msg: fmt.Sprintf("descriptor %q: a limit cannot replace itself (%q)", fullKey, rep.Name)}
				}
				l.Replaces = append(l.Replaces, rep.Name)
			}
			node.Limit = l
		}
		parent.Children[index] = node
		if strings.HasSuffix(rd.Value, "*") {
			parent.Wildcards = append(parent.Wildcards, index)
		}
		if err := buildDescriptors(file, fullKey, node, rd.Descriptors); err != nil {
			return err
		}
	}
	return nil
}
