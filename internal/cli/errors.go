package cli

import (
	"errors"
	"fmt"
	"github.com/moby/moby/client"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/skiff-dev/skiff/internal/cli/formatter"
	"github.com/skiff-dev/skiff/internal/errdefs"
)

// StatusError ends the command with StatusCode. An empty Status prints
// nothing (a container's own exit code is passed through silently).
type StatusError struct {
	Status     string
	StatusCode int
	Cause      error
}

func (e StatusError) Error() string {
	if e.Status != "" {
		return e.Status
	}
	if e.Cause != nil {
		return e.Cause.Error()
	}
	return ""
}

func (e StatusError) Unwrap() error { return e.Cause }

// runError is an error of `run` (or of the parsing of run/create flags): a
// bad flag value or an engine error is 125, a command that cannot be found
// 127, one that cannot be run 126. kind holds which.
type runError struct {
	msg  string
	kind errdefs.Kind
	err  error
}

func (e *runError) Error() string { return e.msg }
func (e *runError) Unwrap() error { return e.err }

// exitCodeFor is the one place that turns an error into the process's exit
// status, as docker does: 0 for success, the container's own status passed
// through (run, start -a, exec, wait), 125 for a usage error or an engine
// error during run, 126/127 when the container's command cannot be run or
// found, 64 for an inspect template that does not parse, and 1 otherwise.
func exitCodeFor(err error) int {
	if err == nil {
		return 0
	}
	var se StatusError
	if errors.As(err, &se) && se.StatusCode != 0 {
		return se.StatusCode
	}
	var re *runError
	if errors.As(err, &re) {
		if code, ok := errdefs.CommandExitCode(errdefs.Wrap(re.kind, re)); ok {
			return code
		}
		return 125
	}
	var ie *formatter.InspectError
	if errors.As(err, &ie) && ie.Code != 0 {
		return ie.Code
	}
	if code, ok := errdefs.CommandExitCode(err); ok {
		return code
	}
	return 1
}

// startErrorKind reads the engine's message the way docker does to tell a
// missing command (127) from one that cannot be run (126).
func startErrorKind(err error) errdefs.Kind {
	if k := errdefs.KindOf(err); k == errdefs.KindCommandNotFound || k == errdefs.KindCannotInvoke {
		return k
	}
	// Only the engine's answer describes the command; a socket that is not
	// there ("no such file or directory") is an engine failure: 125.
	if client.IsErrConnectionFailed(err) {
		return errdefs.KindUnknown
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "executable file not found"),
		strings.Contains(msg, "no such file or directory"),
		strings.Contains(msg, "system cannot find the file specified"):
		return errdefs.KindCommandNotFound
	case strings.Contains(msg, syscall.EACCES.Error()),
		strings.Contains(msg, syscall.EISDIR.Error()),
		strings.Contains(msg, "exec format error"):
		return errdefs.KindCannotInvoke
	}
	return errdefs.KindUnknown
}

// toRunError wraps an error of `skiff run` with docker's decoration and the
// kind that selects 125/126/127.
func toRunError(err error, command string) error {
	if err == nil {
		return nil
	}
	return &runError{msg: withHelp(err, command).Error(), kind: startErrorKind(err), err: err}
}

// usageError is a bad flag value found after parsing (125, like docker).
func usageError(err error, command string) error {
	return &runError{msg: withHelp(err, command).Error(), kind: errdefs.KindInvalid, err: err}
}

func withHelp(err error, command string) error {
	return fmt.Errorf("%s: %w\n\nRun '%s %s --help' for more information", binName, err, binName, command)
}

// flagErrorFunc formats a flag parsing error like docker (exit 125).
func flagErrorFunc(cmd *cobra.Command, err error) error {
	if err == nil {
		return nil
	}
	return StatusError{
		Status:     fmt.Sprintf("%s\n\nUsage:  %s\n\nRun '%s --help' for more information", err, cmd.UseLine(), cmd.CommandPath()),
		StatusCode: 125,
		Cause:      err,
	}
}

func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	if cmd.HasSubCommands() {
		return fmt.Errorf("%s: unknown command: %s %s\n\nRun '%s --help' for more information",
			binName, cmd.CommandPath(), args[0], cmd.CommandPath())
	}
	return fmt.Errorf("%s: '%s' accepts no arguments\n\nUsage:  %s\n\nRun '%s --help' for more information",
		binName, cmd.CommandPath(), cmd.UseLine(), cmd.CommandPath())
}

func requiresMinArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) >= n {
			return nil
		}
		return fmt.Errorf("%s: '%s' requires at least %d %s\n\nUsage:  %s\n\nSee '%s --help' for more information",
			binName, cmd.CommandPath(), n, pluralize("argument", n), cmd.UseLine(), cmd.CommandPath())
	}
}

func requiresMaxArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) <= n {
			return nil
		}
		return fmt.Errorf("%s: '%s' requires at most %d %s\n\nUsage:  %s\n\nRun '%s --help' for more information",
			binName, cmd.CommandPath(), n, pluralize("argument", n), cmd.UseLine(), cmd.CommandPath())
	}
}

func requiresRangeArgs(lo, hi int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) >= lo && len(args) <= hi {
			return nil
		}
		return fmt.Errorf("%s: '%s' requires at least %d and at most %d %s\n\nUsage:  %s\n\nRun '%s --help' for more information",
			binName, cmd.CommandPath(), lo, hi, pluralize("argument", hi), cmd.UseLine(), cmd.CommandPath())
	}
}

func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) == n {
			return nil
		}
		return fmt.Errorf("%s: '%s' requires %d %s\n\nUsage:  %s\n\nRun '%s --help' for more information",
			binName, cmd.CommandPath(), n, pluralize("argument", n), cmd.UseLine(), cmd.CommandPath())
	}
}

func pluralize(word string, n int) string {
	if n == 1 {
		return word
	}
	return word + "s"
}
