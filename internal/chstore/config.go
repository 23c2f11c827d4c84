package chstore

import (
	"fmt"
	"net"
	"regexp"
	"time"

	"github.com/weft-sh/weft/internal/config"
)

// Config says how to reach ClickHouse and where weft keeps its tables.
type Config struct {
	// Addr are native-protocol addresses (host:port, usually port 9000 or 9440 with TLS). Required.
	Addr []string `yaml:"addr"`
	// Database holds weft's tables; created if missing. Default "weft".
	Database string `yaml:"database"`
	// Username to log in as. Default "default".
	Username string `yaml:"username"`
	// Password of Username.
	Password string `yaml:"password"`
	// TLS to ClickHouse. Default off.
	TLS config.TLS `yaml:"tls"`
	// DialTimeout bounds one connection attempt. Default 10s.
	DialTimeout time.Duration `yaml:"dial_timeout"`
	// Compression of the blocks sent to and read from ClickHouse: lz4,
	// zstd, none, or auto: none when every address is a loopback one,
	// where compressing only costs CPU on both ends, else lz4. Default
	// auto.
	Compression string `yaml:"compression"`
	// Cluster spreads weft's tables over a ClickHouse cluster: unset, weft
	// keeps them on one server (docs/clickhouse-cluster.md).
	Cluster Cluster `yaml:"cluster"`
	// Migrate says who applies weft's schema changes: "startup", weft run
	// applies what is pending before it starts; "external", a separate
	// `weft migrate` does (the chart's hook Job, so that N replicas do not
	// race), and weft run refuses to start while a change is pending.
	// Default startup.
	Migrate string `yaml:"migrate"`
}

// Cluster is a ClickHouse cluster weft shards its tables over: on every
// node a table of the shard's rows (events_local, ...) under a Distributed
// table of the usual name (events, ...) that reads all shards and routes
// inserts; order-keyed tables are sharded by cityHash64(order_id), so one
// order's chain stays on one shard.
type Cluster struct {
	// Name of the cluster in the remote_servers configuration of every
	// node. Empty means no cluster.
	Name string `yaml:"name"`
	// Nodes are the native addresses (host:port) at which weft reaches each
	// node of the cluster to apply its schema there: one per shard replica.
	// Empty means the nodes system.clusters lists for Name, at the addresses
	// it gives, asked of the first server of addr.
	Nodes []string `yaml:"nodes"`
}

// Enabled reports whether a cluster is configured.
func (c Cluster) Enabled() bool { return c.Name != "" }

// Values of Config.Migrate.
const (
	MigrateStartup  = "startup"
	MigrateExternal = "external"
)

// Compression methods of Config.Compression.
const (
	CompressionAuto = "auto"
	CompressionLZ4  = "lz4"
	CompressionZSTD = "zstd"
	CompressionNone = "none"
)

// Default returns a Config for a local server.
func Default() Config {
	return Config{Addr: []string{"127.0.0.1:9000"}, Database: "weft", Username: "default", DialTimeout: 10 * time.Second,
		Compression: CompressionAuto, Migrate: MigrateStartup}
}

var identifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Validate reports every problem with its key.
func (c Config) Validate() error {
	var p config.Problems
	if len(c.Addr) == 0 {
		p.Addf("addr", "at least one address is required")
	}
	for i, a := range c.Addr {
		if _, _, err := net.SplitHostPort(a); err != nil {
			p.Addf(fmt.Sprintf("addr[%d]", i), "%q is not host:port", a)
		}
	}
	if !identifier.MatchString(c.Database) {
		p.Addf("database", "%q is not a plain identifier ([A-Za-z_][A-Za-z0-9_]*)", c.Database)
	}
	if c.DialTimeout < 0 {
		p.Addf("dial_timeout", "must not be negative")
	}
	switch c.Compression {
	case "", CompressionAuto, CompressionLZ4, CompressionZSTD, CompressionNone:
	default:
		p.Addf("compression", "%q is not one of auto, lz4, zstd, none", c.Compression)
	}
	switch c.Migrate {
	case "", MigrateStartup, MigrateExternal:
	default:
		p.Addf("migrate", "%q is not one of startup, external", c.Migrate)
	}
	if c.Cluster.Name != "" && !identifier.MatchString(c.Cluster.Name) {
		p.Addf("cluster.name", "%q is not a plain identifier ([A-Za-z_][A-Za-z0-9_]*)", c.Cluster.Name)
	}
	if len(c.Cluster.Nodes) > 0 && c.Cluster.Name == "" {
		p.Addf("cluster.nodes", "nodes are given but cluster.name is empty")
	}
	for i, a := range c.Cluster.Nodes {
		if _, _, err := net.SplitHostPort(a); err != nil {
			p.Addf(fmt.Sprintf("cluster.nodes[%d]", i), "%q is not host:port", a)
		}
	}
	p.Merge("tls", c.TLS.Validate())
	return p.Err()
}

// compression resolves Compression: auto (or empty) is none when every
// address is on loopback, else lz4.
func (c Config) compression() string {
	if c.Compression != "" && c.Compression != CompressionAuto {
		return c.Compression
	}
	for _, a := range c.Addr {
		if !loopback(a) {
			return CompressionLZ4
		}
	}
	return CompressionNone
}

// loopback reports whether host:port names this machine: localhost or a
// loopback IP (127.0.0.0/8, ::1).
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
