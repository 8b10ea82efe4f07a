//go:build !faults

package faults

// Point does nothing in the default build.
func Point(string) {}

// Env is nil in the default build.
func Env() []string { return nil }
