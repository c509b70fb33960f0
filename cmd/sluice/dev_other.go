//go:build !linux

package main

import "syscall"

// devSysProcAttr keeps the defaults off Linux: a Ctrl-C at the terminal
// reaches the nodes too, and each stops itself as `sluice serve` does.
func devSysProcAttr() *syscall.SysProcAttr { return nil }
