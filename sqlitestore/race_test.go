//go:build race

package sqlitestore

// raceEnabled: the race detector slows the processes of TestMultiProcess
// down too much for its utilisation check.
const raceEnabled = true
