package embedch

import (
	"os"
	"syscall"
)

// sysProcAttr puts the child in its own process group, so that signals meant
// for weft's group (Ctrl-C) do not reach it and Shutdown can signal all of
// it, and has the kernel SIGKILL it if weft dies. (Pdeathsig follows the
// thread that forked the child; the Go runtime only retires threads whose
// goroutine exits while locked to them, which Start never does.)
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// signalGroup signals the child's whole process group.
func signalGroup(p *os.Process, sig syscall.Signal) { _ = syscall.Kill(-p.Pid, sig) }
