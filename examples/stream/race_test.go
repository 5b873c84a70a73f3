//go:build race

package main

// raceEnabled: the race detector roughly doubles a process's memory.
const raceEnabled = true
