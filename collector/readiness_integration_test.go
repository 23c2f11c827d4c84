package collector

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/weft-sh/weft/internal/testenv"
)

// TestReadyzSaysWhenAnACLIsMissing: a tap whose principal may read the
// topics but not its own group stores nothing; it must not look ready, and
// must say why.
func TestReadyzSaysWhenAnACLIsMissing(t *testing.T) {
	k := testenv.KafkaSecure(t)
	adm := k.Admin(t)
	store := testenv.Store(t)
	user, pw := k.NewSCRAMUser(t, adm)
	name := testenv.Name(t)
	topic := "noacl_" + name + ".orders"
	secCreateTopics(t, adm, 1, topic)
	// READ on the topic only: no READ on the group.
	k.Grant(t, adm, kadm.NewACLs().Allow("User:"+user).Topics(topic).Operations(kadm.OpRead))

	c := startSecureTap(t, k.Conn("scram-sha-256", user, pw), store, "g_"+name, regexp.QuoteMeta(topic))
	// Not ready once it knows its topic (it owns no partition); once the
	// broker refused the group, Ready says why.
	require.Eventually(t, func() bool {
		err := c.Ready()
		return err != nil && strings.Contains(err.Error(), "GROUP_AUTHORIZATION_FAILED")
	}, 30*time.Second, 100*time.Millisecond, "a tap that may not use its group is not ready, and says why: %v", c.Ready())
}
