package weir

import "github.com/weir-go/weir/internal/algo"

// ParamsOf exposes Limit.params to the external tests.
func ParamsOf(l Limit) algo.Params { return l.params() }
