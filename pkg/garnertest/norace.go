//go:build !race

package garnertest

const raceEnabled = false
