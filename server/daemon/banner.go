package daemon

import (
	"fmt"
	"io"
	"net"
	"sort"
	"strings"

	"github.com/weir-go/weir/server/config"
)

func banner(w io.Writer, cfg *config.Config, store, httpAddr, grpcAddr string, dl net.Listener, domains []string, auth bool, tlsMode string) {
	var names []string
	for _, p := range cfg.Policies {
		names = append(names, p.Name)
	}
	src := cfg.Source
	if src == "" {
		src = "<built-in>"
	}
	sort.Strings(domains)
	fmt.Fprintf(w, "weir serve: store %s, config %s\n", store, src)
	fmt.Fprintf(w, "  policies: %s\n", strings.Join(names, ", "))
	if len(domains) > 0 {
		fmt.Fprintf(w, "  envoy domains: %s\n", strings.Join(domains, ", "))
	}
	scheme, grpcTLS, curlTLS := "http", "", ""
	switch tlsMode {
	case "on":
		scheme, grpcTLS, curlTLS = "https", "TLS; ", " --cacert CA.pem"
	case "mutual":
		scheme, grpcTLS, curlTLS = "https", "mutual TLS; ", " --cacert CA.pem --cert client.pem --key client-key.pem"
	}
	fmt.Fprintf(w, "  HTTP  %s://%s  (%sPOST /v1/check, GET /v1/policies, /metrics, /dashboard)\n", scheme, httpAddr, grpcTLS)
	fmt.Fprintf(w, "  gRPC  %s  (%sweir.v1.Weir, envoy.service.ratelimit.v3.RateLimitService, health, reflection)\n", grpcAddr, grpcTLS)
	if dl != nil {
		fmt.Fprintf(w, "  pprof http://%s/debug/pprof/\n", dl.Addr())
	}
	if len(names) > 0 {
		authHdr := curlTLS
		if auth && tlsMode != "mutual" {
			authHdr += ` -H "Authorization: Bearer $TOKEN"`
		}
		fmt.Fprintf(w, "  try:  curl -s%s %s://%s/v1/check -d '{\"policy\":\"%s\",\"key\":\"user:42\"}'\n", authHdr, scheme, httpAddr, names[0])
		fmt.Fprintf(w, "        open %s://%s/dashboard\n", scheme, httpAddr)
	}
}
