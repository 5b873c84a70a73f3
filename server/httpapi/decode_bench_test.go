package httpapi

import (
	"fmt"
	"strings"
	"testing"
)

func BenchmarkDecodeCheck(b *testing.B) {
	body := []byte(`{"policy":"api","key":"user:12345"}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := DecodeCheck(body, false); err != nil {
			b.Fatal(err)
		}
	}
}

// batchBody is a batch of n checks with a field each: the general
// decoder's path, strict checks included.
func batchBody(n int) []byte {
	var sb strings.Builder
	sb.WriteByte('[')
	for i := range n {
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, `{"policy":"t","key":"user:%d","fields":{"tenant":"acme"}}`, i)
	}
	sb.WriteByte(']')
	return []byte(sb.String())
}

// BenchmarkDecodeCheckBatch decodes a 100-check batch; /strict is the
// strict member scan alone, the part of the decode that refuses repeated
// and case-folded names.
func BenchmarkDecodeCheckBatch(b *testing.B) {
	body := batchBody(100)
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			if _, _, err := DecodeCheck(body, false); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("strict", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			if err := strictMembers(body); err != nil {
				b.Fatal(err)
			}
		}
	})
}
