package bench

import "syscall"

// pdeathsig kills the benchmark's redis-server when the benchmark process
// dies.
func pdeathsig() *syscall.SysProcAttr { return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} }
