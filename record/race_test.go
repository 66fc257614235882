//go:build race

package record

// raceEnabled reports a -race build, under which sync.Pool drops objects at
// random, so allocation counts are not meaningful.
const raceEnabled = true
