package cli

import (
	"errors"
	"fmt"
)

// Exit codes of samsa's commands.
const (
	ExitOK      = 0
	ExitFailure = 1
	ExitUsage   = 2
)

// UsageError is an error in how a command was invoked: a bad flag value, a
// missing or extra argument. It exits with [ExitUsage].
type UsageError struct{ Err error }

func (e UsageError) Error() string { return e.Err.Error() }
func (e UsageError) Unwrap() error { return e.Err }

// Usagef returns a [UsageError] formatted as fmt.Errorf does.
func Usagef(format string, args ...any) error {
	return UsageError{fmt.Errorf(format, args...)}
}

// IsUsage reports whether err is, or wraps, a [UsageError].
func IsUsage(err error) bool {
	var ue UsageError
	return errors.As(err, &ue)
}

// ExitCode is the exit status for err: [ExitOK] for nil, [ExitUsage] for a
// usage error, [ExitFailure] for anything else.
func ExitCode(err error) int {
	switch {
	case err == nil:
		return ExitOK
	case IsUsage(err):
		return ExitUsage
	default:
		return ExitFailure
	}
}
