// Package weirv1 is the generated Go code for the weir.v1 gRPC service
// (server/proto/weir/v1/weir.proto). Do not edit the .pb.go files; run
// go generate in this directory (protoc with protoc-gen-go and
// protoc-gen-go-grpc on PATH).
package weirv1

//go:generate protoc --proto_path=../../proto --go_out=. --go_opt=module=github.com/weir-go/weir/server/gen/weirv1 --go-grpc_out=. --go-grpc_opt=module=github.com/weir-go/weir/server/gen/weirv1 weir/v1/weir.proto
