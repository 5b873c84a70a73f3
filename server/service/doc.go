// Package service is the weir server's decision core: it holds the current
// policies (swapped atomically on reload), renders keys from templates,
// asks the store, and turns store failures into the policy's chosen answer
// (error, fail open, fail closed, or a local fallback limiter).
//
// The HTTP and gRPC front ends are thin translations of [Service] calls;
// errors use one vocabulary: a *weir.FieldError (matching weir.ErrInvalid)
// names the field of bad input, weir.ErrUnavailable means the store failed,
// [ErrPermission] means the caller lacks the admin scope.
package service
