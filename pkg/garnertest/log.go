package garnertest

import (
	"io"

	"github.com/sirupsen/logrus"
)

// QuietLog is a logger that writes nowhere, for a unit test whose code under
// test logs what the test does not read.
func QuietLog() *logrus.Logger {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return l
}
