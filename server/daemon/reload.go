package daemon

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/weir-go/weir/server/config"
	"github.com/weir-go/weir/server/envoyrls"
	"github.com/weir-go/weir/server/metrics"
	"github.com/weir-go/weir/server/service"
	"github.com/weir-go/weir/server/tlsconf"
)

// Load reads the configuration Options name: the file (or the built-in
// demo) plus extra Envoy files. It validates everything.
func Load(o Options) (*config.Config, error) {
	var cfg *config.Config
	var err error
	if o.ConfigPath != "" {
		cfg, err = config.Load(o.ConfigPath)
	} else {
		cfg, err = config.Parse("<built-in demo>", []byte(demoConfig))
		if err == nil && len(o.EnvoyPaths) == 0 {
			var d *config.Domain
			if d, err = config.ParseEnvoy("<built-in demo envoy>", []byte(demoEnvoy)); err == nil {
				cfg.Envoy = append(cfg.Envoy, *d)
			}
		}
	}
	if err != nil {
		return nil, err
	}
	if err := CheckStoreLimits(cfg, first(o.Store, cfg.Server.Store, "memory")); err != nil {
		return nil, err
	}
	if len(o.EnvoyPaths) > 0 {
		domains, files, err := config.LoadEnvoy(o.EnvoyPaths...)
		if err != nil {
			return nil, err
		}
		seen := map[string]bool{}
		for _, d := range cfg.Envoy {
			seen[d.Name] = true
		}
		for _, d := range domains {
			if seen[d.Name] {
				return nil, &config.Error{File: d.File, Msg: fmt.Sprintf("duplicate domain %q", d.Name)}
			}
			cfg.Envoy = append(cfg.Envoy, d)
		}
		sort.Slice(cfg.Envoy, func(i, j int) bool { return cfg.Envoy[i].Name < cfg.Envoy[j].Name })
		cfg.EnvoyFiles = append(cfg.EnvoyFiles, files...)
	}
	return cfg, nil
}

// reloader validates a new configuration fully, then swaps it in.
type reloader struct {
	o   Options
	svc *service.Service
	env *envoyrls.Server
	m   *metrics.Metrics
	log *slog.Logger
	tls *tlsconf.Reloader // nil without TLS

	mu    sync.Mutex
	files []string
	sum   [32]byte
}

func (r *reloader) remember(cfg *config.Config) {
	r.files = nil
	if cfg.Source != "" && r.o.ConfigPath != "" {
		r.files = append(r.files, cfg.Source)
	}
	r.files = append(r.files, cfg.EnvoyFiles...)
	r.files = append(r.files, r.o.EnvoyPaths...)
	r.sum = fingerprint(r.files)
}

// fingerprint hashes the files' contents (and directory listings), so
// that a change is seen whatever the file system's mtime granularity.
func fingerprint(files []string) [32]byte {
	h := sha256.New()
	for _, f := range files {
		fmt.Fprintf(h, "%s\x00", f)
		if st, err := os.Stat(f); err == nil && st.IsDir() {
			ents, _ := os.ReadDir(f)
			for _, e := range ents {
				fmt.Fprintf(h, "%s\x00", e.Name())
				if b, err := os.ReadFile(f + "/" + e.Name()); err == nil {
					h.Write(b)
				}
			}
			continue
		}
		if b, err := os.ReadFile(f); err == nil {
			h.Write(b)
		} else {
			fmt.Fprintf(h, "error %v", err)
		}
	}
	var out [32]byte
	copy(out[:], h.Sum(nil))
	return out
}

// reload loads, validates and applies the configuration. On any error the
// running configuration stays and the error is logged and returned.
func (r *reloader) reload(reason string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.o.ConfigPath == "" && len(r.o.EnvoyPaths) == 0 {
		return errors.New("no configuration file to reload (serving the built-in demo)")
	}
	fail := func(err error) error {
		r.m.ConfigReloads.WithLabelValues("error").Inc()
		r.log.Error("configuration reload failed; keeping the previous configuration", "reason", reason, "err", err.Error())
		return err
	}
	cfg, err := Load(r.o)
	if err != nil {
		return fail(err)
	}
	comp, err := r.svc.Compile(cfg)
	if err != nil {
		return fail(err)
	}
	old := r.svc.Config().Server
	r.svc.Apply(comp)
	r.env.Load(cfg.Envoy, envoyrls.OptionsOf(cfg))
	r.remember(cfg)
	r.m.ConfigReloads.WithLabelValues("ok").Inc()
	r.m.ConfigLastReload.SetToCurrentTime()
	r.log.Info("configuration reloaded", "reason", reason, "policies", len(cfg.Policies), "envoy_domains", len(cfg.Envoy))
	if !serverEqual(old, cfg.Server) {
		r.log.Warn("changes to the server section (listeners, store, tokens, TLS file names) take effect on restart")
	}
	return nil
}

// reloadTLS re-reads the certificate files, whatever their stamps say (a
// failure keeps the previous certificate and is logged by tlsconf).
func (r *reloader) reloadTLS(reason string) error {
	if r.tls == nil {
		return nil
	}
	err := r.tls.Reload()
	if err == nil {
		r.log.Debug("tls files re-read", "reason", reason)
	}
	return err
}

func serverEqual(a, b config.Server) bool {
	return a.HTTP == b.HTTP && a.GRPC == b.GRPC && a.Debug == b.Debug && a.Store == b.Store &&
		strings.Join(a.Tokens, "\x00") == strings.Join(b.Tokens, "\x00") &&
		strings.Join(a.AdminTokens, "\x00") == strings.Join(b.AdminTokens, "\x00") &&
		strings.Join(a.MetricsTokens, "\x00") == strings.Join(b.MetricsTokens, "\x00") && a.TLS == b.TLS
}

func (r *reloader) watch(hup <-chan os.Signal, stop <-chan struct{}) {
	var tick <-chan time.Time
	if r.o.ReloadInterval > 0 && (r.o.ConfigPath != "" || len(r.o.EnvoyPaths) > 0) {
		t := time.NewTicker(r.o.ReloadInterval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-stop:
			return
		case <-hup:
			_ = r.reloadTLS("SIGHUP")
			_ = r.reload("SIGHUP")
		case <-tick:
			r.mu.Lock()
			changed := fingerprint(r.files) != r.sum
			r.mu.Unlock()
			if changed {
				if err := r.reload("file changed"); err != nil {
					// Do not retry the same broken content every tick.
					r.mu.Lock()
					r.sum = fingerprint(r.files)
					r.mu.Unlock()
				}
			}
		}
	}
}
