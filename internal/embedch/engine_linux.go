package embedch

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"syscall"
	"time"
	"unsafe"

	"github.com/ebitengine/purego"
)

// runEngine is Serve once its options are checked.
// The engine's native port is enginePort; o.TCPPort is guardNative's.
func runEngine(libPath string, o ServeOptions, enginePort int) error {
	if runtime.GOARCH != "amd64" {
		return fmt.Errorf("embedch: the embedded ClickHouse engine runs on linux/amd64 only, not linux/%s", runtime.GOARCH)
	}
	goHandlers := currentHandlers()
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
	// The engine's own handlers for the deadly signals (SIGSEGV, SIGABRT,
	// SIGBUS, SIGILL, SIGFPE, ...) stay on: they write the signal, the thread,
	// the query and a stack trace to ClickHouse's log before the process dies
	// (docs/architecture.md, "The embedded ClickHouse"). With Go's handlers
	// in their place, a deadly signal on one of the engine's threads is not
	// Go's to handle: Go re-raises it with the default action and the process
	// dies without a word. The engine installs them as it starts serving,
	// without SA_ONSTACK; keepOnSignalStack adds the flag, as the Go runtime
	// requires of foreign handlers (one run on a goroutine's small stack
	// could overflow it).
	go keepOnSignalStack(goHandlers, time.Second)

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
		"--tcp_port=" + strconv.Itoa(enginePort),
		"--http_port=" + strconv.Itoa(o.HTTPPort),
		"--listen_host=" + ListenHost,
		"--config-file=" + o.configFile(),
		"--log-level=" + o.logLevel(),
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
// writes it, larger than the kernel's: on linux/amd64, the only platform the
// engine runs on, [0] is the handler and [1] the flags.
type kernelSigaction [8]uint64

func sigaction(sig int, act, old *kernelSigaction) {
	_, _, _ = syscall.RawSyscall6(syscall.SYS_RT_SIGACTION, uintptr(sig),
		uintptr(unsafe.Pointer(act)), uintptr(unsafe.Pointer(old)), 8, 0, 0)
}

const (
	nsig      = 64
	saOnStack = 0x08000000 // SA_ONSTACK
)

// currentHandlers returns every signal's handler (SIG_DFL is 0, SIG_IGN 1).
func currentHandlers() [nsig + 1]uint64 {
	var h [nsig + 1]uint64
	for s := 1; s <= nsig; s++ {
		var a kernelSigaction
		sigaction(s, nil, &a)
		h[s] = a[0]
	}
	return h
}

// keepOnSignalStack adds SA_ONSTACK to every handler installed since before
// (the handlers the process had before the engine loaded: Go's), now and
// then every interval, since the engine installs its handlers at some point
// while it starts and again on some of its threads.
func keepOnSignalStack(before [nsig + 1]uint64, interval time.Duration) {
	for {
		for s := 1; s <= nsig; s++ {
			var a kernelSigaction
			sigaction(s, nil, &a)
			if a[0] > 1 && a[0] != before[s] && a[1]&saOnStack == 0 {
				a[1] |= saOnStack
				sigaction(s, &a, nil)
			}
		}
		time.Sleep(interval)
	}
}
