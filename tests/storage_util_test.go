package tests

import (
	"strconv"
	"syscall"
)

type syscallStat = syscall.Stat_t

func itoa(v uint32) string { return strconv.FormatUint(uint64(v), 10) }
