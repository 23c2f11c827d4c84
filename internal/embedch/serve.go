package embedch

import (
	"encoding/xml"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
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

// Files Serve keeps in the data directory beside the databases.
const (
	// ServerLogName is ClickHouse's own log: warnings, errors and, when it
	// crashes, the signal, thread, query and stack trace.
	ServerLogName = "clickhouse-server.log"
	// ServerErrorLogName holds the errors and fatal messages of
	// ServerLogName alone.
	ServerErrorLogName = "clickhouse-server.err.log"
	// ConfigName is the server configuration Serve writes at every start.
	ConfigName = "clickhouse-embedded.xml"
	// DefaultLogLevel is ClickHouse's log level unless ServeOptions says
	// otherwise.
	DefaultLogLevel = "information"
)

// ServeOptions configures Serve.
type ServeOptions struct {
	Path     string // data directory (clickhouse --path); created if missing
	TCPPort  int    // native protocol port on ListenHost
	HTTPPort int    // HTTP port on ListenHost
	// LogLevel of ServerLogName: fatal, error, warning, information, debug
	// or trace. Empty means DefaultLogLevel.
	LogLevel string
	// Cluster, when set, is a cluster of this server and others, one
	// shard each, named in remote_servers so that Distributed tables can
	// span them (weft's clickhouse.cluster; docs/clickhouse-cluster.md).
	Cluster Cluster
}

// Cluster names embedded servers that form a cluster: each is one shard
// of one replica, reached at its native address on ListenHost. The engine
// cannot run Keeper (it is built without it), so there are no replicated
// tables and no ON CLUSTER statements.
type Cluster struct {
	Name   string   // the cluster's name in remote_servers
	Shards []string // native addresses (host:port), one per shard, this server's among them
}

func (o ServeOptions) configFile() string { return filepath.Join(o.Path, ConfigName) }

func (o ServeOptions) logLevel() string {
	if o.LogLevel == "" {
		return DefaultLogLevel
	}
	return o.LogLevel
}

// ChildArgs are the flags of ChildCommand that make it Serve(lib, o).
func ChildArgs(lib string, o ServeOptions) []string {
	return []string{
		"--lib=" + lib,
		"--path=" + o.Path,
		"--tcp-port=" + strconv.Itoa(o.TCPPort),
		"--http-port=" + strconv.Itoa(o.HTTPPort),
		"--log-level=" + o.logLevel(),
		"--cluster=" + o.Cluster.Name,
		"--cluster-shards=" + strings.Join(o.Cluster.Shards, ","),
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
	lib, o, err := ParseChildArgs(args)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if err := Serve(lib, o); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// ParseChildArgs parses the flags ChildArgs makes: the engine library's
// path and the options of Serve.
func ParseChildArgs(args []string) (lib string, o ServeOptions, err error) {
	fs := flag.NewFlagSet(ChildCommand, flag.ContinueOnError)
	fs.StringVar(&lib, "lib", "", "path of libchdb.so")
	fs.StringVar(&o.Path, "path", "", "data directory")
	fs.IntVar(&o.TCPPort, "tcp-port", 0, "native protocol port")
	fs.IntVar(&o.HTTPPort, "http-port", 0, "HTTP port")
	fs.StringVar(&o.LogLevel, "log-level", "", "ClickHouse's log level")
	fs.StringVar(&o.Cluster.Name, "cluster", "", "cluster name in remote_servers")
	shards := fs.String("cluster-shards", "", "native addresses of the cluster's shards, comma-separated")
	if err := fs.Parse(args); err != nil {
		return "", o, err
	}
	if fs.NArg() > 0 {
		return "", o, fmt.Errorf("%s: unexpected arguments %q", ChildCommand, fs.Args())
	}
	if *shards != "" {
		o.Cluster.Shards = strings.Split(*shards, ",")
	}
	return lib, o, nil
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
	if err := o.Cluster.validate(o.TCPPort); err != nil {
		return err
	}
	switch o.logLevel() {
	case "fatal", "critical", "error", "warning", "notice", "information", "debug", "trace", "test":
	default:
		return fmt.Errorf("embedch: unknown ClickHouse log level %q", o.LogLevel)
	}
	if err := os.MkdirAll(o.Path, 0o755); err != nil {
		return fmt.Errorf("embedch: %w", err)
	}
	if err := writeConfig(o); err != nil {
		return err
	}
	// Clients reach the engine through guardNative (guard.go).
	ln, err := listenGuard(o.TCPPort)
	if err != nil {
		return err
	}
	enginePort, err := freeLoopbackPort()
	if err != nil {
		return err
	}
	go guardNative(ln, net.JoinHostPort(ListenHost, strconv.Itoa(enginePort)))
	return runEngine(libPath, o, enginePort)
}

// writeConfig writes the server's configuration into the data directory,
// replacing the one an earlier start wrote: ClickHouse's log files beside
// the data, rotated. (The level comes from --log-level: the engine ignores
// logger.level.)
func writeConfig(o ServeOptions) error {
	esc := func(s string) string {
		var b strings.Builder
		_ = xml.EscapeText(&b, []byte(s))
		return b.String()
	}
	conf := `<!-- Written by weft at every start of the embedded ClickHouse (internal/embedch); edits are lost. -->
<clickhouse>
    <logger>
        <log>` + esc(filepath.Join(o.Path, ServerLogName)) + `</log>
        <errorlog>` + esc(filepath.Join(o.Path, ServerErrorLogName)) + `</errorlog>
        <errorlog_level>error</errorlog_level>
        <size>50M</size>
        <count>2</count>
    </logger>
` + clusterConfig(o.Cluster, esc) + `</clickhouse>
`
	if err := os.WriteFile(o.configFile(), []byte(conf), 0o644); err != nil {
		return fmt.Errorf("embedch: server configuration: %w", err)
	}
	return nil
}

// validate checks that a cluster's name can be an XML element and the
// cluster's shards include this server's port.
func (c Cluster) validate(tcpPort int) error {
	if c.Name == "" {
		if len(c.Shards) > 0 {
			return errors.New("embedch: cluster shards without a cluster name")
		}
		return nil
	}
	if !clusterName.MatchString(c.Name) {
		return fmt.Errorf("embedch: cluster name %q is not [A-Za-z_][A-Za-z0-9_]*", c.Name)
	}
	self := false
	for _, addr := range c.Shards {
		_, port, err := net.SplitHostPort(addr)
		if err != nil {
			return fmt.Errorf("embedch: cluster shard %q is not host:port", addr)
		}
		self = self || port == strconv.Itoa(tcpPort)
	}
	if !self {
		return fmt.Errorf("embedch: cluster %s does not list this server (port %d) among its shards", c.Name, tcpPort)
	}
	return nil
}

var clusterName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// clusterConfig is the remote_servers section naming c, empty without a
// cluster. Distributed inserts are sent in the foreground by weft
// (distributed_foreground_insert), but the pool that would send
// background ones is given a thread too: its default in the engine is
// none, and a Distributed insert made without the setting would wait
// forever in the table's queue.
func clusterConfig(c Cluster, esc func(string) string) string {
	if c.Name == "" {
		return ""
	}
	var b strings.Builder
	b.WriteString("    <background_distributed_schedule_pool_size>2</background_distributed_schedule_pool_size>\n")
	b.WriteString("    <remote_servers>\n        <" + c.Name + ">\n")
	for _, addr := range c.Shards {
		host, port, _ := net.SplitHostPort(addr)
		b.WriteString("            <shard><replica><host>" + esc(host) + "</host><port>" + esc(port) + "</port></replica></shard>\n")
	}
	b.WriteString("        </" + c.Name + ">\n    </remote_servers>\n")
	return b.String()
}
