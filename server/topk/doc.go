// Package topk finds the heaviest keys of a stream in bounded memory: the
// keys with the most traffic, or the most denials, of a weir server's
// policies, for its dashboard. Standard library only.
//
// # The sketch
//
// A [Sketch] is the space-saving algorithm of Metwally, Agrawal and El
// Abbadi ("Efficient computation of frequent and top-k elements in data
// streams", ICDT 2005). It holds at most k counters, whatever the number
// of distinct keys. A key that has a counter adds its weight to it; a new
// key, when all k counters are taken, replaces the key of the smallest
// counter and inherits its count plus its own weight, remembering the
// inherited part as the counter's error. With N the total weight added:
//
//   - a counter never underestimates: for every key shown,
//     Count-Err <= true count <= Count, and Err is at most the smallest
//     count held, which is at most N/k;
//   - every key whose true count exceeds N/k (more precisely: exceeds the
//     smallest count held) has a counter, so a key with more than a k-th
//     of the traffic is never missed;
//   - the counts always sum to N.
//
// The order of the top keys is exact for keys whose counts differ by more
// than their errors; at the bottom of the table, where counts are close to
// the minimum, it is approximate, and the page shows each error.
//
// # Recent traffic
//
// A [Window] shows recent traffic with two sketches: the current period's
// and the previous period's. [Window.Rotate], called with the time by the
// caller (the dashboard's once-a-second sampler; the hot path reads no
// clock), moves the current sketch to previous and starts an empty one
// when a period has passed. [Window.Top] merges both, so it covers the
// last one to two periods (with a one-minute period: the last one to two
// minutes). A key absent from one of the two sketches is counted there at
// that sketch's smallest count (its upper bound), so the merged counts keep
// the guarantee: Count-Err <= true count over the two periods <= Count.
//
// # Cost
//
// An update is a map lookup and, when the counter moves, a sift in a
// binary heap of k counters (O(log k)) under the window's mutex; a key
// not yet held costs one string copy. Memory is k counters and their
// keys per sketch, four sketches per policy (traffic and denials, current
// and previous).
package topk
