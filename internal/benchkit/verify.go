package benchkit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"time"
)

// VerifyResult is `weft audit verify` over the audit trail a weft run
// stored, beside a bare read of the same rows.
type VerifyResult struct {
	// Run: Events are the rows verify checked (events and quarantine),
	// Elapsed its wall time from start to exit, ClientCPU its user+system
	// CPU.
	Run
	// PeakRSS is the verify process's high-water resident set size.
	PeakRSS int64
	// Verdict is verify's (verified, tampered, unverified); Leaves the
	// leaves it checked; Findings how many problems it named.
	Verdict  string
	Leaves   uint64
	Findings int
	// Bare is the fastest of two bare reads (BareSelect) of the rows
	// verify reads, one before verify and one after: Events are the events
	// and quarantine rows, so its rate and verify's compare per record.
	Bare Run
}

// Ratio is verify's rate over the bare read's.
func (v VerifyResult) Ratio() float64 {
	if v.Bare.Rate() <= 0 {
		return 0
	}
	return v.Rate() / v.Bare.Rate()
}

// verifyReport is the part of `weft audit verify -o json` the benchmark reads.
type verifyReport struct {
	Verdict string `json:"verdict"`
	Error   string `json:"error"`
	Logs    []struct {
		Leaves uint64 `json:"leaves"`
		Rows   uint64 `json:"rows"`
	} `json:"logs"`
	Findings []json.RawMessage `json:"findings"`
}

// measureVerify runs the bare read, `weft audit verify` with the config
// of the stopped weft run c (its database, cluster id, signing key and
// checkpoint sink), and the bare read again.
func measureVerify(ctx context.Context, admin *Server, c WeftConfig) (VerifyResult, error) {
	var res VerifyResult
	bare := func() error {
		m := startCPU(ctx, admin)
		start := time.Now()
		n, err := admin.bareSelect(ctx, c.Database)
		if err != nil {
			return fmt.Errorf("bare select: %w", err)
		}
		r := Run{Events: int(n), Elapsed: time.Since(start)}
		m.stop(ctx, &r)
		if res.Bare.Elapsed == 0 || r.Elapsed < res.Bare.Elapsed {
			res.Bare = r
		}
		return nil
	}
	if err := bare(); err != nil {
		return res, err
	}

	var out, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, c.Bin, "audit", "verify", "--config", filepath.Join(c.Dir, "weft.yaml"), "-o", "json")
	cmd.Stdout, cmd.Stderr = &out, &stderr
	m := startCPU(ctx, admin)
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return res, fmt.Errorf("weft audit verify: %w", err)
	}
	// The peak RSS is read from /proc while it runs: the rusage of a child
	// started with vfork (as os/exec does) counts the parent's resident
	// set at exec, this benchmark's.
	done := make(chan struct{})
	peak := make(chan int64, 1)
	go func() {
		var hwm int64
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			if v, err := vmHWM(cmd.Process.Pid); err == nil {
				hwm = max(hwm, v)
			}
			select {
			case <-done:
				peak <- hwm
				return
			case <-tick.C:
			}
		}
	}()
	err := cmd.Wait()
	close(done)
	res.Elapsed = time.Since(start)
	res.PeakRSS = <-peak
	m.stop(ctx, &res.Run)
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		return res, fmt.Errorf("weft audit verify: %w", err)
	}
	st := cmd.ProcessState
	res.ClientCPU = st.UserTime() + st.SystemTime()
	var rep verifyReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		return res, fmt.Errorf("weft audit verify (exit %d): %w\n%s", st.ExitCode(), err, tail(stderr.Bytes()))
	}
	if rep.Verdict == "unverified" {
		return res, fmt.Errorf("weft audit verify could not verify: %s\n%s", rep.Error, tail(stderr.Bytes()))
	}
	res.Verdict, res.Findings = rep.Verdict, len(rep.Findings)
	for _, l := range rep.Logs {
		res.Leaves += l.Leaves
		res.Events += int(l.Rows)
	}
	return res, bare()
}

func tail(b []byte) string {
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}
