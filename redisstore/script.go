package redisstore

import (
	"crypto/sha1"
	"embed"
	"encoding/hex"
	"strings"
	"sync"
)

// The decision script: the files of scripts/ concatenated in the order of
// scriptFiles (the entry point, which runs the common case and returns;
// then the general path: prelude, one file per algorithm, main). It is a
// compile-time constant: every key and value reaches it through KEYS and
// ARGV, laid out as wire.go defines.
//
//go:embed scripts/*.lua
var scriptFS embed.FS

// scriptFiles lists every file of scripts/ in script order. kindK_*.lua
// builds the algorithm whose weir.Algorithm value is K (BUILD[K]).
var scriptFiles = []string{
	"entry.lua",
	"prelude.lua",
	"kind0_gcra.lua",    // weir.TokenBucket
	"kind1_log.lua",     // weir.SlidingWindowLog
	"kind2_counter.lua", // weir.SlidingWindowCounter
	"kind3_fixed.lua",   // weir.FixedWindow
	"kind4_lease.lua",   // weir.Concurrency
	"main.lua",
}

// script returns the whole script and its SHA-1 (as EVALSHA wants it),
// built on first use rather than at init, so that a program that links
// the package without using it (weir pipe, weir check) does not pay for it.
var script = sync.OnceValues(func() (src, sha string) {
	var b strings.Builder
	for _, n := range scriptFiles {
		text, err := scriptFS.ReadFile("scripts/" + n)
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
