module github.com/weir-go/weir/cmd/weir

go 1.26.0

require github.com/weir-go/weir/server v0.0.0

require (
	github.com/inconshreveable/mousetrap v1.1.0 // indirect
	github.com/spf13/cobra v1.10.2 // indirect
	github.com/spf13/pflag v1.0.9 // indirect
)

replace (
	github.com/weir-go/weir => ../../
	github.com/weir-go/weir/server => ../../server
)
