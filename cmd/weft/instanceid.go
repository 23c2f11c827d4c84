package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/weft-sh/weft/collector"
)

// tapConfig is the tap's configuration with its instance id resolved
// (docs/delivery.md, "Restarts and replicas"): collector.instance_id
// (WEFT_COLLECTOR_INSTANCE_ID) when set, else $POD_NAME — in Kubernetes
// the pod's name, from the downward API — else none: dynamic membership.
// Not the host name: two processes on one host would claim one id, and the
// broker would fence one of them.
func tapConfig(c collector.Config, getenv func(string) string) collector.Config {
	if c.InstanceID == "" {
		c.InstanceID = getenv("POD_NAME")
	}
	return c
}

// devInstanceID is `weft dev`'s instance id, made on first use and kept
// in dataDir/instance-id, so a restarted `make run` takes its partitions
// back at once.
func devInstanceID(dataDir string) (string, error) {
	file := filepath.Join(dataDir, "instance-id")
	b, err := os.ReadFile(file)
	if err == nil {
		id := strings.TrimSpace(string(b))
		c := collector.Default()
		c.InstanceID = id
		if id == "" || c.Validate() != nil {
			return "", fmt.Errorf("%s: %q is not an instance id (letters, digits, '.', '_', '-'); delete the file to make a new one", file, id)
		}
		return id, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("instance id: %w", err)
	}
	rnd := make([]byte, 4)
	_, _ = rand.Read(rnd)
	id := "weft-dev-" + hex.EncodeToString(rnd)
	if err := os.WriteFile(file, []byte(id+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("instance id: %w", err)
	}
	return id, nil
}
