//go:build !race

package algo

// raceEnabled reports whether the race detector is on; the property tests
// then run fewer seeds (see propSeeds).
const raceEnabled = false
