package embedch

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"syscall"
	"unsafe"

	"github.com/ebitengine/purego"
)

// runEngine is Serve once its options are checked.
func runEngine(libPath string, o ServeOptions) error {
	if runtime.GOARCH != "amd64" {
		return fmt.Errorf("embedch: the embedded ClickHouse engine runs on linux/amd64 only, not linux/%s", runtime.GOARCH)
	}
	lib, err := purego.Dlopen(libPath, purego.RTLD_NOW|purego.RTLD_GLOBAL)
	if err != nil {
		return fmt.Errorf("embedch: load ClickHouse engine %s: %w", libPath, err)
	}
	// chdb_result *chdb_query_cmdline(int argc, char **argv)
	var queryCmdline func(argc int32, argv **byte) uintptr
	// const char *chdb_result_error(chdb_result *result)
	var resultError func(result uintptr) *byte
	for name, fn := range map[string]any{"chdb_query_cmdline": &queryCmdline, "chdb_result_error": &resultError} {
		sym, err := purego.Dlsym(lib, name)
		if err != nil {
			return fmt.Errorf("embedch: %s lacks %s: %w", libPath, name, err)
		}
		purego.RegisterFunc(fn, sym)
	}
	// void chdb_set_signal_handlers_enabled(int enabled), since chDB 26.3.
	if sym, err := purego.Dlsym(lib, "chdb_set_signal_handlers_enabled"); err == nil {
		var setSignalHandlers func(enabled int32)
		purego.RegisterFunc(&setSignalHandlers, sym)
		// Left on, chDB replaces the Go runtime's handlers for SIGSEGV and
		// the other deadly signals with ones lacking SA_ONSTACK that sleep
		// before dying; turning them off resets those signals to SIG_DFL.
		// Keep Go's handlers instead: a crash then ends the process at once.
		keepSignalHandlers(func() { setSignalHandlers(0) })
	}

	// Exit promptly and with status 0 when the parent stops us.
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		s := <-stop
		fmt.Fprintf(os.Stderr, "embedch: %v: exiting\n", s)
		os.Exit(0) // exit_group: no C++ static destructors race the engine's threads
	}()

	args := []string{
		"clickhouse",
		"--path=" + o.Path,
		"--tcp_port=" + strconv.Itoa(o.TCPPort),
		"--http_port=" + strconv.Itoa(o.HTTPPort),
		"--listen_host=" + ListenHost,
		"--query=" + serveQuery,
	}
	cargs := make([][]byte, len(args))
	argv := make([]*byte, len(args)+1) // NULL-terminated like main's argv
	for i, a := range args {
		cargs[i] = append([]byte(a), 0)
		argv[i] = &cargs[i][0]
	}
	res := queryCmdline(int32(len(args)), &argv[0])
	runtime.KeepAlive(cargs)
	runtime.KeepAlive(argv)
	// The result is leaked on purpose: the process is about to exit.
	if res == 0 {
		return errors.New("embedch: ClickHouse stopped without a result")
	}
	if msg := goString(resultError(res)); msg != "" {
		return fmt.Errorf("embedch: ClickHouse stopped: %s", msg)
	}
	return errors.New("embedch: ClickHouse stopped serving (its own messages precede this one)")
}

// goString copies the NUL-terminated C string at p.
func goString(p *byte) string {
	if p == nil {
		return ""
	}
	n := 0
	for *(*byte)(unsafe.Add(unsafe.Pointer(p), n)) != 0 {
		n++
	}
	return string(unsafe.Slice(p, n))
}

// kernelSigaction holds a struct sigaction as rt_sigaction(2) reads and
// writes it; it is larger than the kernel's on every architecture, and only
// ever copied back as it was read.
type kernelSigaction [8]uint64

func sigaction(sig int, act, old *kernelSigaction) {
	_, _, _ = syscall.RawSyscall6(syscall.SYS_RT_SIGACTION, uintptr(sig),
		uintptr(unsafe.Pointer(act)), uintptr(unsafe.Pointer(old)), 8, 0, 0)
}

// keepSignalHandlers runs f and then puts back every signal disposition that
// f changed.
func keepSignalHandlers(f func()) {
	const nsig = 64
	var before, after [nsig + 1]kernelSigaction
	for s := 1; s <= nsig; s++ {
		sigaction(s, nil, &before[s])
	}
	f()
	for s := 1; s <= nsig; s++ {
		sigaction(s, nil, &after[s])
		if after[s] != before[s] {
			sigaction(s, &before[s], nil)
		}
	}
}
