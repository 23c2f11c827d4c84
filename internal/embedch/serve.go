package embedch

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
)

// The child process: Start runs Command (by default the running executable
// with the hidden subcommand ChildCommand) followed by ChildArgs, with
// ChildEnv=1 in its environment. weft's CLI serves ChildCommand itself; any
// other binary that calls Start, such as a test binary, must call ChildMain
// first thing in main or TestMain.
const (
	ChildCommand = "clickhouse-embedded"
	ChildEnv     = "WEFT_EMBEDCH_CHILD"
)

// ListenHost is the only address the server binds: it has no authentication.
const ListenHost = "127.0.0.1"

// serveQuery opens the listeners, then keeps the one clickhouse-local query,
// and so the servers, alive for about 31 years.
const serveQuery = "SYSTEM START LISTEN TCP; SYSTEM START LISTEN HTTP; " +
	"SELECT sleepEachRow(1) FROM numbers(1000000000) " +
	"SETTINGS max_block_size=1, function_sleep_max_microseconds_per_block=0 FORMAT Null"

// ServeOptions configures Serve.
type ServeOptions struct {
	Path     string // data directory (clickhouse --path); created if missing
	TCPPort  int    // native protocol port on ListenHost
	HTTPPort int    // HTTP port on ListenHost
}

// ChildArgs are the flags of ChildCommand that make it Serve(lib, o).
func ChildArgs(lib string, o ServeOptions) []string {
	return []string{
		"--lib=" + lib,
		"--path=" + o.Path,
		"--tcp-port=" + strconv.Itoa(o.TCPPort),
		"--http-port=" + strconv.Itoa(o.HTTPPort),
	}
}

// ChildMain returns at once unless ChildEnv is set, that is unless this
// process is a child spawned by Start. Then it parses the arguments after
// ChildCommand, serves, and exits the process. Test packages that call Start
// with the default Command need:
//
//	func TestMain(m *testing.M) { embedch.ChildMain(); os.Exit(m.Run()) }
func ChildMain() {
	if os.Getenv(ChildEnv) != "1" {
		return
	}
	args := os.Args[1:]
	for i, a := range args {
		if a == ChildCommand {
			args = args[i+1:]
			break
		}
	}
	fs := flag.NewFlagSet(ChildCommand, flag.ContinueOnError)
	lib := fs.String("lib", "", "path of libchdb.so")
	var o ServeOptions
	fs.StringVar(&o.Path, "path", "", "data directory")
	fs.IntVar(&o.TCPPort, "tcp-port", 0, "native protocol port")
	fs.IntVar(&o.HTTPPort, "http-port", 0, "HTTP port")
	if err := fs.Parse(args); err != nil {
		os.Exit(2)
	}
	if err := Serve(*lib, o); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// Serve loads the ClickHouse engine from libPath into this process and runs a
// server on ListenHost until the process is killed. Call it only in a
// process of its own (see Start): the engine cannot be unloaded, takes over
// process-wide state, and this function does not return while it serves.
// SIGTERM and SIGINT exit the process at once; data already written stays
// under o.Path.
//
// It returns an error if the library cannot be loaded or the server stops,
// for example because a port is taken.
func Serve(libPath string, o ServeOptions) error {
	if libPath == "" || o.Path == "" || o.TCPPort <= 0 || o.HTTPPort <= 0 {
		return errors.New("embedch: Serve needs a library, a data path and both ports")
	}
	if err := os.MkdirAll(o.Path, 0o755); err != nil {
		return fmt.Errorf("embedch: %w", err)
	}
	return runEngine(libPath, o)
}
