package redisstore

import (
	"crypto/sha1"
	"embed"
	"encoding/hex"
	"io/fs"
	"slices"
	"strings"
	"sync"
)

// The decision script: the files of scripts/ concatenated in name order
// (prelude, one file per algorithm, then the entry point). It is a
// compile-time constant: every key and value reaches it through KEYS and
// ARGV.
//
//go:embed scripts/*.lua
var scriptFS embed.FS

// script returns the whole script and its SHA-1 (as EVALSHA wants it),
// built on first use rather than at init, so that a program that links
// the package without using it (weir pipe, weir check) does not pay for it.
var script = sync.OnceValues(func() (src, sha string) {
	names, err := fs.Glob(scriptFS, "scripts/*.lua")
	if err != nil || len(names) == 0 {
		panic("redisstore: no embedded scripts")
	}
	slices.Sort(names)
	var b strings.Builder
	for _, n := range names {
		text, err := scriptFS.ReadFile(n)
		if err != nil {
			panic("redisstore: " + err.Error())
		}
		b.Write(text)
		b.WriteByte('\n')
	}
	src = b.String()
	sum := sha1.Sum([]byte(src))
	return src, hex.EncodeToString(sum[:])
})

func scriptSrc() string { src, _ := script(); return src }
func scriptSHA() string { _, sha := script(); return sha }
