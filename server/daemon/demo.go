package daemon

// demoConfig is the built-in policy set `weir serve` uses without
// --config: small, and one of each kind so every endpoint can be tried.
const demoConfig = `
policies:
  api:
    description: "demo: 100 requests/s per key with bursts of 200, and 5000 per hour"
    limits:
      - "100/s burst=200"
      - "5000/h algo=sliding-window name=hourly"
  login:
    description: "demo: 5 attempts per minute per user, exact sliding log"
    limits: ["5/m algo=sliding-log"]
    key: "login:{key}"
  uploads:
    description: "demo: at most 3 concurrent uploads per tenant (leases expire after 30s)"
    limits: ["3/30s algo=concurrency"]
    key: "tenant:{key}"
  search-shadow:
    description: "demo: a shadow policy (counts, always allows)"
    limits: ["10/s"]
    shadow: true
`

// demoEnvoy is the built-in Envoy domain (envoyproxy/ratelimit format).
const demoEnvoy = `
domain: demo
descriptors:
  - key: remote_address
    rate_limit:
      unit: second
      requests_per_unit: 10
  - key: generic_key
    value: slow
    rate_limit:
      unit: minute
      requests_per_unit: 5
`
