// Package envoyrls answers Envoy's global rate-limit protocol,
// envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit, from
// envoyproxy/ratelimit's YAML configuration read unchanged, so an Envoy or
// Istio rate-limit cluster can point at `weir serve`.
//
// Semantics follow the reference server: each descriptor is matched
// against the domain's descriptor tree (a key and value beat a key alone
// at the same level; a trailing '*' in a value is a prefix; a request
// descriptor with N entries only matches a limit at depth N), counted in a
// fixed window aligned to the Unix epoch (weir.FixedWindow; a month is 30
// days, a year 365), and every descriptor is evaluated and incremented on
// its own: the overall code is OVER_LIMIT if any descriptor is (with
// quota_mode, when every quota descriptor is). Hits that go over a limit
// still count, so a window stays over limit until it ends. unlimited,
// shadow_mode and quota_mode (per descriptor and global), replaces,
// hits_addend (per request and per descriptor), limit overrides,
// requests_per_unit 0 (always over limit) and the RateLimit-* response
// headers behave as in the reference. Descriptors on one counter are
// decided in request order, even when others are decided in parallel.
//
// Envoy lets a request through when the service errs, so every input that
// allows a decision gets one: a long descriptor is counted under its
// SHA-256, descriptors beyond MaxDescriptors are over the limit, an
// override with an unknown unit is ignored, and Codec decodes descriptor
// values that are not UTF-8 instead of failing the call.
//
// This package is the only one importing go-control-plane: keep it a leaf
// so that users of the weir library never compile it.
package envoyrls
