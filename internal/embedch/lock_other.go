//go:build !unix

package embedch

import (
	"context"
	"io"
)

const haveFlock = false

// lockFile is a no-op where flock is unavailable: Fetch still publishes the
// library by rename, so concurrent fetches at worst download twice.
func lockFile(context.Context, string, io.Writer) (func(), error) { return func() {}, nil }
