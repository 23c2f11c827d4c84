//go:build !linux

package embedch

import (
	"os"
	"syscall"
)

// The engine runs on Linux only; elsewhere this merely compiles and does the
// obvious thing.
func sysProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{} }

func signalGroup(p *os.Process, sig syscall.Signal) {
	if p.Signal(sig) != nil {
		_ = p.Kill()
	}
}
