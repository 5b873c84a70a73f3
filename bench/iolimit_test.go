//go:build linux

package bench

import (
	"context"
	"io"
	"os"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/juju/ratelimit"

	"github.com/weir-go/weir/iolimit"
)

// blockReader reads an endless stream copied from a 64 KiB block: the
// memory traffic of a real source. It has no WriteTo, so io.CopyBuffer
// goes through the caller's buffer.
type blockReader struct {
	block []byte
	off   int
}

func newBlockReader() *blockReader {
	b := make([]byte, 64<<10)
	for i := range b {
		b[i] = byte(i * 7)
	}
	return &blockReader{block: b}
}

func (r *blockReader) Read(p []byte) (int, error) {
	n := copy(p, r.block[r.off:])
	r.off = (r.off + n) % len(r.block)
	return n, nil
}

// sink discards writes and has no ReadFrom.
type sink struct{}

func (sink) Write(p []byte) (int, error) { return len(p), nil }

const copyChunk = 4 << 20 // bytes copied per benchmark op

// BenchmarkIOLimitCopy is the unthrottled overhead of iolimit.NewReader:
// io.CopyBuffer with a 32 KiB (io.Copy's size) or 256 KiB buffer from a
// plain reader (impl=iocopy)
// and from the same reader behind a Limit with an unreachable rate
// (impl=weir). The source is either memory (src=memory: a 64 KiB block
// that stays in cache, the worst case for the throttle's relative cost)
// or /dev/zero read with system calls (src=devzero). The B/s column
// compares their throughput; cpu-ns/op is the CPU time of the
// benchmark's thread per op, which a busy machine disturbs less than the
// wall clock.
func BenchmarkIOLimitCopy(b *testing.B) {
	for _, buf := range []int{32 << 10, 256 << 10} {
		for _, src := range []string{"memory", "devzero"} {
			for _, impl := range []string{"iocopy", "weir"} {
				name := "buf=" + strconv.Itoa(buf>>10) + "KiB/src=" + src + "/impl=" + impl
				b.Run(name, func(b *testing.B) { copyBench(b, buf, src, impl) })
			}
		}
	}
}

func copyBench(b *testing.B, bufSize int, source, impl string) {
	lim, err := iolimit.NewLimit(iolimit.MaxRate, 1<<20)
	if err != nil {
		b.Fatal(err)
	}
	var src io.Reader = newBlockReader()
	if source == "devzero" {
		f, err := os.Open("/dev/zero")
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		src = struct{ io.Reader }{f} // hide WriteTo
	}
	buf := make([]byte, bufSize)
	b.ReportAllocs()
	b.SetBytes(copyChunk)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cpu0 := threadCPU(b)
	for b.Loop() {
		var r io.Reader = io.LimitReader(src, copyChunk)
		if impl == "weir" {
			r = iolimit.NewReader(context.Background(), r, lim)
		}
		if _, err := io.CopyBuffer(sink{}, r, buf); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(threadCPU(b)-cpu0)/float64(b.N), "cpu-ns/op")
}

// BenchmarkIOLimitCopyParallel is BenchmarkIOLimitCopy with GOMAXPROCS
// streams sharing one Limit (impl=weir) or unthrottled (impl=iocopy).
func BenchmarkIOLimitCopyParallel(b *testing.B) {
	for _, impl := range []string{"iocopy", "weir"} {
		b.Run("impl="+impl, func(b *testing.B) {
			lim, err := iolimit.NewLimit(iolimit.MaxRate, 1<<20)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.SetBytes(copyChunk)
			b.RunParallel(func(pb *testing.PB) {
				src, buf := newBlockReader(), make([]byte, 32<<10)
				for pb.Next() {
					var r io.Reader = io.LimitReader(src, copyChunk)
					if impl == "weir" {
						r = iolimit.NewReader(context.Background(), r, lim)
					}
					if _, err := io.CopyBuffer(sink{}, r, buf); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

// threadCPU is the user+system CPU time of the calling thread so far.
func threadCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// iolimitCPU is the user+system CPU time of the process so far.
func iolimitCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkThrottle100MiB copies through a reader throttled to 100 MiB/s
// with a 5 MiB burst, Weir's (impl=weir) and juju/ratelimit's
// (impl=juju), 100 MiB per op, in real time: run it with -benchtime=10x
// for 10 s. It reports the error of the achieved rate against the target
// over the whole run (err%, including the initial burst: +0.5% when both
// are exact) and the CPU time per second of transfer (cpu-ms/s).
func BenchmarkThrottle100MiB(b *testing.B) {
	const (
		rate  = 100 << 20
		burst = rate / 20
	)
	for _, impl := range []string{"weir", "juju"} {
		b.Run("impl="+impl, func(b *testing.B) {
			src, buf := newBlockReader(), make([]byte, 32<<10)
			var r io.Reader
			switch impl {
			case "weir":
				lim, err := iolimit.NewLimit(rate, burst)
				if err != nil {
					b.Fatal(err)
				}
				r = iolimit.NewReader(context.Background(), src, lim)
			case "juju":
				r = ratelimit.Reader(src, ratelimit.NewBucketWithRate(rate, burst))
			}
			b.ReportAllocs()
			b.SetBytes(rate)
			start, cpu0 := time.Now(), iolimitCPU(b)
			var total int64
			for b.Loop() {
				n, err := io.CopyBuffer(sink{}, io.LimitReader(r, rate), buf)
				if err != nil {
					b.Fatal(err)
				}
				total += n
			}
			elapsed := time.Since(start)
			b.ReportMetric((float64(total)/elapsed.Seconds()/rate-1)*100, "err%")
			b.ReportMetric(float64(iolimitCPU(b)-cpu0)/float64(time.Millisecond)/elapsed.Seconds(), "cpu-ms/s")
		})
	}
}
