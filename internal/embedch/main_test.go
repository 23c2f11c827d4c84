package embedch

import (
	"os"
	"testing"
)

// TestMain lets Start re-execute this test binary as the server child.
func TestMain(m *testing.M) {
	ChildMain()
	os.Exit(m.Run())
}
