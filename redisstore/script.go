package redisstore

import (
	"crypto/sha1"
	"embed"
	"encoding/hex"
	"io/fs"
	"slices"
	"strings"
)

// The decision script: the files of scripts/ concatenated in name order
// (prelude, one file per algorithm, then the entry point). It is a
// compile-time constant: every key and value reaches it through KEYS and
// ARGV.
//
//go:embed scripts/*.lua
var scriptFS embed.FS

var (
	scriptSrc string // the whole script
	scriptSHA string // its SHA-1, as EVALSHA wants it
)

func init() {
	names, err := fs.Glob(scriptFS, "scripts/*.lua")
	if err != nil || len(names) == 0 {
		panic("redisstore: no embedded scripts")
	}
	slices.Sort(names)
	var b strings.Builder
	for _, n := range names {
		src, err := scriptFS.ReadFile(n)
		if err != nil {
			panic("redisstore: " + err.Error())
		}
		b.Write(src)
		b.WriteByte('\n')
	}
	scriptSrc = b.String()
	sum := sha1.Sum([]byte(scriptSrc))
	scriptSHA = hex.EncodeToString(sum[:])
}
