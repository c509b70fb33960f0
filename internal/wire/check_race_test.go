//go:build race

package wire

// raceEnabled: the race detector changes what the runtime allocates, so
// byte-exact allocation comparisons are skipped under it.
const raceEnabled = true
