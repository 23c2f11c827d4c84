package chstore

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestCompression: auto sends uncompressed only when every address is on
// this machine; an explicit method wins; a wrong one names the key.
func TestCompression(t *testing.T) {
	for _, tc := range []struct {
		name, set string
		addr      []string
		want      string
	}{
		{"auto, loopback v4", "auto", []string{"127.0.0.1:9000"}, CompressionNone},
		{"auto, 127/8", "", []string{"127.0.0.2:9000"}, CompressionNone},
		{"auto, localhost and ::1", "auto", []string{"localhost:9000", "[::1]:9000"}, CompressionNone},
		{"auto, one remote", "auto", []string{"127.0.0.1:9000", "10.0.0.5:9000"}, CompressionLZ4},
		{"auto, a name", "auto", []string{"clickhouse:9000"}, CompressionLZ4},
		{"explicit lz4 on loopback", "lz4", []string{"127.0.0.1:9000"}, CompressionLZ4},
		{"explicit none remote", "none", []string{"10.0.0.5:9000"}, CompressionNone},
		{"zstd", "zstd", []string{"10.0.0.5:9000"}, CompressionZSTD},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			c.Addr, c.Compression = tc.addr, tc.set
			assert.NoError(t, c.Validate())
			assert.Equal(t, tc.want, c.compression())
			assert.Contains(t, compressions, c.compression(), "both clients have a method for it")
		})
	}
	c := Default()
	c.Compression = "snappy"
	assert.ErrorContains(t, c.Validate(), "compression")
}
