package auditor

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/weft-sh/weft/internal/config"
)

// Config is the audit block of weft.yaml: where the keys come from. Keys
// are read from a file or from the environment, never from ClickHouse and
// never from weft.yaml itself.
type Config struct {
	// Enabled turns the audit trail on: the tap appends every stored
	// record to its partition's log and signs checkpoints. Default false.
	Enabled bool `yaml:"enabled"`
	// ClusterID names the cluster in every log's origin line
	// (weft/<cluster-id>/<topic>/<partition>): printable ASCII without '/',
	// '+' or spaces. Required when Enabled; never change it afterwards.
	ClusterID string `yaml:"cluster_id"`
	// Checkpoint says how often logs are checkpointed and where copies go.
	Checkpoint CheckpointConfig `yaml:"checkpoint"`
	// Verify schedules `weft run`'s own verification of the trail.
	Verify VerifyConfig `yaml:"verify"`
	// SigningKeyFile is a file holding the checkpoint signer key, as
	// `weft audit key --generate` writes it. When set it wins over
	// SigningKeyEnv. Default "".
	SigningKeyFile string `yaml:"signing_key_file"`
	// SigningKeyEnv names the environment variable that holds the signer
	// key when SigningKeyFile is empty. With neither set, checkpoints are
	// unsigned and weft says so. Default WEFT_AUDIT_SIGNING_KEY.
	SigningKeyEnv string `yaml:"signing_key_env"`
	// SourceKeyFile is a file holding the source key (base64, at least 32
	// bytes) that keys C_source and order tags. When set it wins over
	// SourceKeyEnv. Default "".
	SourceKeyFile string `yaml:"source_key_file"`
	// SourceKeyEnv names the environment variable that holds the source key
	// when SourceKeyFile is empty. With neither set, leaves carry no source
	// commitment. Default WEFT_AUDIT_SOURCE_KEY.
	SourceKeyEnv string `yaml:"source_key_env"`
}

// CheckpointConfig is the audit.checkpoint block.
type CheckpointConfig struct {
	// EveryLeaves checkpoints a log once it has grown by this many leaves
	// since its last checkpoint. Default 10000.
	EveryLeaves uint64 `yaml:"every_leaves"`
	// Every checkpoints a log that has grown at all once its last
	// checkpoint is this old (checked as batches are stored, once a
	// second, and when the tap stops). Default 1m.
	Every time.Duration `yaml:"every"`
	// Dir is a directory outside ClickHouse where every checkpoint is also
	// appended, one file per log; empty keeps them in ClickHouse alone.
	// Default "".
	Dir string `yaml:"dir"`
}

// VerifyConfig is the audit.verify block: `weft run` verifies what was
// stored lately on a schedule, as `weft audit verify --since <window>`
// would, and exports the verdict as metrics (weft_audit_verify_*).
type VerifyConfig struct {
	// Every is how often; 0 turns the schedule off. Default 1h.
	Every time.Duration `yaml:"every"`
	// Window is how far back each run verifies: every log from its newest
	// state stored before then. At least Every, so no stretch goes
	// unverified. Default 2h.
	Window time.Duration `yaml:"window"`
}

// Default returns the defaults.
func Default() Config {
	return Config{SigningKeyEnv: "WEFT_AUDIT_SIGNING_KEY", SourceKeyEnv: "WEFT_AUDIT_SOURCE_KEY",
		Checkpoint: CheckpointConfig{EveryLeaves: 10_000, Every: time.Minute},
		Verify:     VerifyConfig{Every: time.Hour, Window: 2 * time.Hour}}
}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Validate reports every problem at once, with its key.
func (c Config) Validate() error {
	var p config.Problems
	for _, f := range []struct{ key, v string }{{"signing_key_env", c.SigningKeyEnv}, {"source_key_env", c.SourceKeyEnv}} {
		if f.v != "" && !envName.MatchString(f.v) {
			p.Addf(f.key, "%q is not an environment variable name", f.v)
		}
	}
	if c.Enabled {
		if err := ValidClusterID(c.ClusterID); err != nil {
			p.Addf("cluster_id", "%v (required when the audit trail is enabled)", err)
		}
	}
	if c.Checkpoint.EveryLeaves == 0 {
		p.Addf("checkpoint.every_leaves", "must be at least 1")
	}
	if c.Checkpoint.Every <= 0 {
		p.Addf("checkpoint.every", "must be positive")
	}
	if c.Verify.Every < 0 {
		p.Addf("verify.every", "must not be negative (0 turns the schedule off)")
	}
	if c.Verify.Every > 0 && c.Verify.Window < c.Verify.Every {
		p.Addf("verify.window", "%s is shorter than verify.every (%s): what was stored between two runs would go unverified", c.Verify.Window, c.Verify.Every)
	}
	if c.SigningKeyFile != "" && c.SigningKeyFile == c.SourceKeyFile {
		p.Addf("source_key_file", "the same file as signing_key_file: use two keys")
	}
	return p.Err()
}

// LoadSigner returns the configured signer, or nil (with no error) when no
// key is configured: checkpoints are then unsigned. A key that is
// configured but unreadable or malformed is an error, never a silent
// fallback to unsigned.
func (c Config) LoadSigner() (*Signer, error) {
	text, where, err := c.read(c.SigningKeyFile, c.SigningKeyEnv)
	if err != nil || text == "" {
		return nil, err
	}
	s, err := NewSigner(text)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	return s, nil
}

// LoadSourceKey returns the configured source key, or nil (with no error)
// when none is configured.
func (c Config) LoadSourceKey() (*SourceKey, error) {
	text, where, err := c.read(c.SourceKeyFile, c.SourceKeyEnv)
	if err != nil || text == "" {
		return nil, err
	}
	k, err := ParseSourceKey(text)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	return k, nil
}

// read returns the key text from the file, else from the environment
// variable, and where it came from; "" when neither is set.
func (Config) read(file, env string) (text, where string, err error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", "", fmt.Errorf("audit key: %w", err)
		}
		if strings.TrimSpace(string(b)) == "" {
			return "", "", fmt.Errorf("audit key file %s is empty", file)
		}
		return strings.TrimSpace(string(b)), "audit key file " + file, nil
	}
	if env == "" {
		return "", "", nil
	}
	return strings.TrimSpace(os.Getenv(env)), "environment variable " + env, nil
}
