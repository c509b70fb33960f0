package main

import "syscall"

// devSysProcAttr puts each node in its own process group, so a Ctrl-C at
// the terminal reaches only `sluice dev cluster`, which then stops the
// nodes itself, in order and with a bounded wait. Pdeathsig stops a node
// if the parent dies without doing so (kill -9), instead of leaving it
// holding its ports.
func devSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}
