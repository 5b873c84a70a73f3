package envoyrls

import typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"

func typeUnit(u int32) typev3.RateLimitUnit { return typev3.RateLimitUnit(u) }
