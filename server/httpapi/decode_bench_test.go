package httpapi

import "testing"

func BenchmarkDecodeCheck(b *testing.B) {
	body := []byte(`{"policy":"api","key":"user:12345"}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := DecodeCheck(body, false); err != nil {
			b.Fatal(err)
		}
	}
}
