package benchkit

import (
	"context"
	"syscall"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// selfCPU is this process's user+system CPU time so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// serverCPU is ClickHouse's user+system CPU time so far, as its own
// ProfileEvents count it (query, insert, view and Kafka engine threads;
// background merges too, as far as ClickHouse attributes them).
func serverCPU(ctx context.Context, conn driver.Conn) time.Duration {
	var us uint64
	if err := conn.QueryRow(ctx, `SELECT sum(value) FROM system.events
		WHERE event IN ('UserTimeMicroseconds', 'SystemTimeMicroseconds')`).Scan(&us); err != nil {
		return 0
	}
	return time.Duration(us) * time.Microsecond
}

// cpuMeter measures the CPU one phase costs this process and ClickHouse.
type cpuMeter struct {
	conn         driver.Conn
	self, server time.Duration
}

func startCPU(ctx context.Context, conn driver.Conn) cpuMeter {
	return cpuMeter{conn: conn, self: selfCPU(), server: serverCPU(ctx, conn)}
}

// stop fills r's CPU fields; client is this process's unless r already
// has one (a child process's).
func (m cpuMeter) stop(ctx context.Context, r *Run) {
	if r.ClientCPU == 0 {
		r.ClientCPU = selfCPU() - m.self
	}
	r.ServerCPU = serverCPU(ctx, m.conn) - m.server
}
