// Package httpapi is the weir server's native HTTP JSON API:
//
//	POST /v1/check    {"policy":"api","key":"user:42","cost":1}   (or a JSON array of those: a batch)
//	POST /v1/acquire  {"policy":"jobs","key":"tenant:7"}           → {"allowed":true,"lease":"…",…}
//	                  (+ "wait_ms": up to 5000 to wait in line for the units)
//	POST /v1/release  {"policy":"jobs","key":"tenant:7","lease":"…"}
//	POST /v1/report   {"policy":"llm","key":"sk-1","cost":730,"reserved":500}
//	                  (settle work's actual cost: the excess charged, into debt if need be)
//	GET  /v1/policies
//	POST /v1/reset    {"policy":"api","key":"user:42"}             (admin scope)
//	POST /v1/reload                                                (admin scope)
//	GET  /livez /readyz /healthz /healthcheck /metrics
//
// A denial is 200 with "allowed":false: the caller enforces. Bad input is
// 400 with a JSON error naming the field; bodies over 64 KiB are 413; a
// failed store is 503. Limits come only from the server's policies: a
// request carrying any other field ("limit", "period", …) is rejected (S7).
package httpapi
