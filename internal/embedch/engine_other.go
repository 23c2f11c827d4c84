//go:build !linux

package embedch

import (
	"fmt"
	"runtime"
)

func runEngine(string, ServeOptions, int) error {
	return fmt.Errorf("embedch: the embedded ClickHouse engine runs on linux/amd64 only, not %s/%s", runtime.GOOS, runtime.GOARCH)
}
