package main

import (
	"math/bits"
	"time"
)

// subBits sets the histogram's precision: each power of two is split into
// 2^subBits linear buckets, so a recorded value is off by at most
// 1/2^subBits (under 1%) of itself.
const (
	subBits  = 7
	subCount = 1 << subBits
	// maxExp bounds the range: values up to 2^(maxExp+subBits) ns (about
	// 4.9 hours) are kept exactly to the bucket; larger ones go in the last.
	maxExp = 37
)

// Histogram is a log-linear latency histogram in the manner of HDR
// Histogram: values below 2^subBits ns each have a bucket; above, every
// power of two has subCount buckets. It is not safe for concurrent use:
// each load stream keeps its own and they are merged at the end.
type Histogram struct {
	counts [(maxExp + 1) * subCount]uint64
	n      uint64
	max    int64
}

// bucket returns the index of v's bucket.
func bucket(v int64) int {
	if v < subCount {
		return int(max(v, 0))
	}
	e := bits.Len64(uint64(v)) - subBits - 1 // v>>e is in [subCount, 2*subCount)
	i := (e+1)*subCount + int(v>>e) - subCount
	return min(i, len(Histogram{}.counts)-1)
}

// lowest returns the smallest value of bucket i.
func lowest(i int) int64 {
	if i < subCount {
		return int64(i)
	}
	e := i/subCount - 1
	return int64(i%subCount+subCount) << e
}

// Record adds one latency.
func (h *Histogram) Record(d time.Duration) {
	v := int64(d)
	h.counts[bucket(v)]++
	h.n++
	h.max = max(h.max, v)
}

// Merge adds o's counts to h.
func (h *Histogram) Merge(o *Histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.max = max(h.max, o.max)
}

// Count returns how many values were recorded.
func (h *Histogram) Count() uint64 { return h.n }

// Quantile returns the value below which a fraction q of the recorded
// values lie, as the middle of its bucket (never above the largest value).
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q*float64(h.n) + 0.5)
	rank = min(max(rank, 1), h.n)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			lo := lowest(i)
			mid := lo + (lowest(i+1)-lo)/2
			return time.Duration(min(mid, h.max))
		}
	}
	return time.Duration(h.max)
}
