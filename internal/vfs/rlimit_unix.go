//go:build unix

package vfs

import "syscall"

// DescriptorLimit is the process's limit on open file descriptors (the soft
// RLIMIT_NOFILE, which Go raises to the hard limit at start-up); 0 when it
// cannot be read or is unlimited.
func DescriptorLimit() int {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Cur > 1<<30 {
		return 0
	}
	return int(lim.Cur)
}
