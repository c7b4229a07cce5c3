package cache

import (
	"strings"
	"testing"
	"time"
)

func filled(n int) (*LRU[val], []Key) {
	c := NewLRU[val](n, 0)
	keys := make([]Key, n)
	v := until("v", t0.Add(time.Hour))
	for i := range keys {
		keys[i] = key(i)
		c.Put(keys[i], v, t0)
	}
	return c, keys
}

func BenchmarkGetHit(b *testing.B) {
	c, keys := filled(1024)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		c.Get(keys[i&1023], t0)
	}
}

func BenchmarkGetMiss(b *testing.B) {
	c, _ := filled(1024)
	k := key(-1)
	b.ReportAllocs()
	for b.Loop() {
		c.Get(k, t0)
	}
}

func BenchmarkGetHitParallel(b *testing.B) {
	c, keys := filled(1024)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for i := 0; pb.Next(); i++ {
			c.Get(keys[i&1023], t0)
		}
	})
}

// BenchmarkGetHitOneShard is the unsharded figure, for comparison.
func BenchmarkGetHitParallelOneShard(b *testing.B) {
	c := NewLRU[val](1024, 1)
	v := until("v", t0.Add(time.Hour))
	keys := make([]Key, 1024)
	for i := range keys {
		keys[i] = key(i)
		c.Put(keys[i], v, t0)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for i := 0; pb.Next(); i++ {
			c.Get(keys[i&1023], t0)
		}
	})
}

func BenchmarkPut(b *testing.B) {
	c := NewLRU[val](1<<16, 0)
	keys := make([]Key, 1<<16)
	for i := range keys {
		keys[i] = key(i)
	}
	v := until("v", t0.Add(time.Hour))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		c.Put(keys[i&(1<<16-1)], v, t0)
	}
}

func BenchmarkPutParallel(b *testing.B) {
	c := NewLRU[val](1<<16, 0)
	keys := make([]Key, 1<<16)
	for i := range keys {
		keys[i] = key(i)
	}
	v := until("v", t0.Add(time.Hour))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for i := 0; pb.Next(); i++ {
			c.Put(keys[i&(1<<16-1)], v, t0)
		}
	})
}

// BenchmarkTokenHash hashes a token of a typical size (about 800 bytes).
func BenchmarkTokenHash(b *testing.B) {
	tok := strings.Repeat("eyJhbGciOiJFUzI1NiJ9", 40)
	b.SetBytes(int64(len(tok)))
	b.ReportAllocs()
	for b.Loop() {
		Hash(tok)
	}
}
