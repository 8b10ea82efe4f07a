// Package faults holds the kill points of the fault suite (tests/faults_test.go).
//
// Point(name) marks a step where a crash must leave nothing behind. In a
// binary built with `-tags faults`, the process whose SKIFF_FAULT names the
// point SIGKILLs itself there, after creating the file SKIFF_FAULT_MARK
// names (so a test knows the kill happened). The default build compiles
// Point to an empty function the compiler inlines away: release binaries
// carry no cost and no way to trigger it.
//
// Point names say the process and the step: engine points are plain
// ("start-after-net"), the monitor's start with "monitor-", init's with
// "init-". The monitor inherits the engine's environment; init gets an
// empty one, so the runtime hands it Env() (empty in the default build).
package faults
