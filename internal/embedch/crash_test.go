package embedch

import "testing"

// A crash as ClickHouse logs it (26.7, SIGABRT on one of its threads).
const fatalLog = `2026.12.03 13:45:30.100000 [ 7970 ] {q1} <Error> executeQuery: Code: 62. DB::Exception: Syntax error. (SYNTAX_ERROR)
2026.12.03 13:45:32.578666 [ 7966 ] {} <Fatal> ClientBase: ########## Short fault info ############
2026.12.03 13:45:32.590939 [ 7966 ] {} <Fatal> ClientBase: (version 26.7.2.1, build id: 95AB, git hash: 7d84, architecture: x86_64) (from thread 7972) Received signal 6 (signal sent by pid 8011 from user 0)
2026.12.03 13:45:32.591107 [ 7966 ] {} <Fatal> ClientBase: Signal description: Aborted
2026.12.03 13:45:32.591168 [ 7966 ] {} <Fatal> ClientBase: Stack trace: 0x00007fd279697f17 0x00007fd27969a5d8
2026.12.03 13:45:32.591193 [ 7966 ] {} <Fatal> ClientBase: ########################################
2026.12.03 13:45:32.591208 [ 7966 ] {} <Fatal> ClientBase: (version 26.7.2.1, build id: 95AB, git hash: 7d84) (from thread 7972) (no query) Received signal Aborted (6)
2026.12.03 13:45:32.591236 [ 7966 ] {} <Fatal> ClientBase: Stack trace: 0x00007fd279697f17 0x00007fd27969a5d8
2026.12.03 13:45:32.591276 [ 7966 ] {} <Fatal> ClientBase: 3. __futex_abstimed_wait_common @ 0x0000000000085f17
2026.12.03 13:45:32.591390 [ 7966 ] {} <Fatal> ClientBase: 10. start_thread @ 0x00000000000891f5
2026.12.03 13:45:32.591400 [ 7966 ] {} <Fatal> ClientBase: Signal description: Aborted
`

func TestFatalReason(t *testing.T) {
	want := "(from thread 7972) Received signal 6 (signal sent by pid 8011 from user 0); Signal description: Aborted; " +
		"(from thread 7972) (no query) Received signal Aborted (6)"
	if got := fatalReason([]byte(fatalLog)); got != want {
		t.Errorf("fatalReason =\n%q\nwant\n%q", got, want)
	}
	// No fatal line: the last error.
	if got := fatalReason([]byte(fatalLog[:160])); got != "Code: 62. DB::Exception: Syntax error. (SYNTAX_ERROR)" {
		t.Errorf("fatalReason of errors only = %q", got)
	}
	if got := fatalReason(nil); got != "" {
		t.Errorf("fatalReason(nil) = %q", got)
	}
}

func TestStderrTail(t *testing.T) {
	out := "--- weft: starting embedded ClickHouse at x\nLogging information to /d/clickhouse-server.log\n" +
		"a\nb\nfree(): invalid pointer\n\n"
	if got := stderrTail([]byte(out)); got != "a | b | free(): invalid pointer" {
		t.Errorf("stderrTail = %q", got)
	}
	if got := stderrTail([]byte("--- weft: starting embedded ClickHouse at x\n")); got != "" {
		t.Errorf("stderrTail of the header alone = %q", got)
	}
}
