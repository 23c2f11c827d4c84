package benchkit

import (
	"context"
	"syscall"
	"time"
)

// selfCPU is this process's user+system CPU time so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cpuMeter measures the CPU one phase costs this process and ClickHouse.
type cpuMeter struct {
	srv          *Server
	self, server time.Duration
}

func startCPU(ctx context.Context, srv *Server) cpuMeter {
	return cpuMeter{srv: srv, self: selfCPU(), server: srv.serverCPU(ctx)}
}

// stop fills r's CPU fields; client is this process's unless r already
// has one (a child process's).
func (m cpuMeter) stop(ctx context.Context, r *Run) {
	if r.ClientCPU == 0 {
		r.ClientCPU = selfCPU() - m.self
	}
	r.ServerCPU = m.srv.serverCPU(ctx) - m.server
}
