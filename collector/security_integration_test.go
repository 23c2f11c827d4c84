package collector

import (
	"context"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weft-sh/weft/internal/chstore"
	"github.com/weft-sh/weft/internal/kafkaconn"
	"github.com/weft-sh/weft/internal/testenv"
	"github.com/weft-sh/weft/queuehealth"
)

// The security tests run against the real broker's SASL_SSL listener
// (scripts/testkafka.sh): TLS verified against the test CA, SASL PLAIN or
// SCRAM, and Kafka's StandardAuthorizer without an allow-if-no-ACL fallback,
// so the tap's principal can do exactly what docs/kafka-access.md grants.

// grantTapACLs grants principal the tap's documented read-only ACLs
// (docs/kafka-access.md): READ on the topics with names starting with
// topicPrefix, READ on its own group. READ implies DESCRIBE.
func grantTapACLs(t *testing.T, k *testenv.SecureKafka, adm *kadm.Client, principal, topicPrefix, group string) {
	t.Helper()
	k.Grant(t, adm, kadm.NewACLs().Allow(principal).
		Topics(topicPrefix).ResourcePatternType(kadm.ACLPatternPrefixed).
		Operations(kadm.OpRead))
	k.Grant(t, adm, kadm.NewACLs().Allow(principal).
		Groups(group).ResourcePatternType(kadm.ACLPatternLiteral).
		Operations(kadm.OpRead))
}

// startSecureTap runs a collector with connection kc in group over the
// topics matching pattern until the test ends.
func startSecureTap(t *testing.T, kc kafkaconn.Config, store *chstore.Store, group, pattern string) *Collector {
	t.Helper()
	return runTap(t, kc, store, group, pattern).c
}

// secProduceEvents writes n plain-JSON events to each topic with client cl and
// returns the event ids by topic.
func secProduceEvents(t *testing.T, cl *kgo.Client, n int, topics ...string) map[string][]string {
	t.Helper()
	ids := map[string][]string{}
	var recs []*kgo.Record
	for _, topic := range topics {
		for i := range n {
			id := fmt.Sprintf("%s-%d", topic, i)
			ids[topic] = append(ids[topic], id)
			recs = append(recs, &kgo.Record{Topic: topic, Key: fmt.Appendf(nil, "ord-%d", i),
				Value: fmt.Appendf(nil, `{"event_id":%q,"event_type":"OrderPlaced","order_id":"ord-%d"}`, id, i)})
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, cl.ProduceSync(ctx, recs...).FirstErr())
	return ids
}

func secCreateTopics(t *testing.T, adm *kadm.Client, partitions int32, topics ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := adm.CreateTopics(ctx, partitions, 1, nil, topics...)
	require.NoError(t, err)
	require.NoError(t, res.Error())
}

// secStoredEventIDs returns the event ids stored per topic.
func secStoredEventIDs(t *testing.T, store *chstore.Store) map[string][]string {
	t.Helper()
	rows, err := testenv.Conn(t).Query(context.Background(),
		"SELECT topic, event_id FROM "+store.Table("events")+" FINAL ORDER BY topic, partition, offset")
	require.NoError(t, err)
	defer rows.Close()
	got := map[string][]string{}
	for rows.Next() {
		var topic, id string
		require.NoError(t, rows.Scan(&topic, &id))
		got[topic] = append(got[topic], id)
	}
	require.NoError(t, rows.Err())
	return got
}

func secWaitStored(t *testing.T, c *Collector, n int64) {
	t.Helper()
	require.Eventually(t, func() bool { return c.Stats().Stored+c.Stats().Quarantined >= n },
		30*time.Second, 50*time.Millisecond, "tap stored %+v, want %d records", c.Stats(), n)
}

// TestSecurityTLSAndSASL: the tap ingests over TLS (the broker's certificate
// verified against the test CA) with each SASL mechanism weft supports,
// holding only the documented read-only ACLs.
func TestSecurityTLSAndSASL(t *testing.T) {
	k := testenv.KafkaSecure(t)
	adm := k.Admin(t)
	producer := k.Client(t, k.Conn("scram-sha-512", "admin", k.Password(t, "admin")))
	for _, mech := range []string{"scram-sha-256", "scram-sha-512", "plain"} {
		t.Run(mech, func(t *testing.T) {
			// PLAIN users are fixed in the broker's JAAS config; SCRAM users
			// are created per test, like an operator would.
			user, pw := "weft", k.Password(t, "weft")
			if mech != "plain" {
				user, pw = k.NewSCRAMUser(t, adm)
			}
			store := testenv.Store(t)
			name := testenv.Name(t)
			prefix, group := "sec_"+name+".", "g_"+name
			topics := []string{prefix + "orders", prefix + "payments"}
			secCreateTopics(t, adm, 2, topics...)
			grantTapACLs(t, k, adm, "User:"+user, prefix, group)
			want := secProduceEvents(t, producer, 5, topics...)

			c := startSecureTap(t, k.Conn(mech, user, pw), store, group, regexp.QuoteMeta(prefix)+".*")
			secWaitStored(t, c, 10)
			assert.Equal(t, Stats{Consumed: 10, Stored: 10}, c.Stats())
			got := secStoredEventIDs(t, store)
			for _, topic := range topics {
				assert.ElementsMatch(t, want[topic], got[topic], topic)
			}
		})
	}
}

// TestSecurityStartFailsClearly: a wrong password or an untrusted
// certificate ends Start at once with one error that says so, instead of
// retries until a timeout.
func TestSecurityStartFailsClearly(t *testing.T) {
	k := testenv.KafkaSecure(t)
	store := testenv.Store(t)
	untrusted := k.Conn("scram-sha-512", "weft", k.Password(t, "weft"))
	untrusted.TLS.CAFile = "" // the system's CAs do not know the test CA
	for _, tc := range []struct {
		name string
		kc   kafkaconn.Config
		is   error
		msg  []string
	}{
		{"wrong password scram-sha-512", k.Conn("scram-sha-512", "weft", "not-the-password"), kafkaconn.ErrAuthentication,
			[]string{"SASL_AUTHENTICATION_FAILED", "SCRAM-SHA-512"}},
		{"wrong password scram-sha-256", k.Conn("scram-sha-256", "weft", "not-the-password"), kafkaconn.ErrAuthentication,
			[]string{"SASL_AUTHENTICATION_FAILED", "SCRAM-SHA-256"}},
		{"wrong password plain", k.Conn("plain", "weft", "not-the-password"), kafkaconn.ErrAuthentication,
			[]string{"SASL_AUTHENTICATION_FAILED", "Invalid username or password"}},
		{"unknown user", k.Conn("scram-sha-512", "nobody", "x"), kafkaconn.ErrAuthentication,
			[]string{"SASL_AUTHENTICATION_FAILED"}},
		{"untrusted certificate", untrusted, kafkaconn.ErrTLS, []string{"certificate signed by unknown authority"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Default()
			cfg.Group = "g_" + testenv.Name(t)
			c, err := New(cfg, tc.kc, store, Settings{Logger: zerolog.Nop()})
			require.NoError(t, err)
			start := time.Now()
			err = c.Start(context.Background())
			took := time.Since(start)
			require.Error(t, err)
			t.Logf("Start: %v (after %s)", err, took.Round(time.Millisecond))
			assert.Less(t, took, 5*time.Second, "a rejection is final, not retried until the timeout")
			assert.ErrorIs(t, err, tc.is)
			if tc.is == kafkaconn.ErrAuthentication {
				assert.ErrorIs(t, err, kerr.SaslAuthenticationFailed, "the broker's error stays in the chain")
			}
			assert.NotContains(t, err.Error(), "\n", "one line")
			for _, m := range tc.msg {
				assert.Contains(t, strings.ToLower(err.Error()), strings.ToLower(m))
			}
			require.NoError(t, c.Shutdown(context.Background()))
		})
	}
}

// TestSecurityReadOnlyACLs: with only the documented ACLs — READ on the
// tapped topics (a prefix), READ on its own group, DESCRIBE on the groups
// whose lag it watches, READ on a dead-letter topic — the tap ingests and
// commits in its own group, never touches a topic it may not read, and the
// lag monitor measures another group's lag and the DLQ; the same principal
// is denied producing and committing for another group. The broker's
// authorizer log proves weft never even tried either.
func TestSecurityReadOnlyACLs(t *testing.T) {
	k := testenv.KafkaSecure(t)
	adm := k.Admin(t)
	admin := k.Client(t, k.Conn("scram-sha-512", "admin", k.Password(t, "admin")))
	store := testenv.Store(t)
	user, pw := k.NewSCRAMUser(t, adm)
	principal := "User:" + user
	name := testenv.Name(t)
	prefix, group, app := "acl_"+name+".", "g_"+name, "app_"+name
	topics := []string{prefix + "orders", prefix + "payments"}
	secret := "secret_" + name       // matched by the tap's pattern, but no ACL
	dlq := "fulfil_" + name + ".dlq" // not tapped; queue health watches it
	secCreateTopics(t, adm, 3, append(topics, secret, dlq)...)
	grantTapACLs(t, k, adm, principal, prefix, group)
	k.Grant(t, adm, kadm.NewACLs().Allow(principal).Groups("*").Operations(kadm.OpDescribe))
	k.Grant(t, adm, kadm.NewACLs().Allow(principal).Topics(dlq).Operations(kadm.OpRead))
	want := secProduceEvents(t, admin, 7, append(topics, secret)...)
	secProduceEvents(t, admin, 2, dlq)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// An application's consumer group, with a commit of its own.
	var appOffs kadm.Offsets
	appOffs.Add(kadm.Offset{Topic: topics[0], Partition: 0, At: 1, LeaderEpoch: -1})
	committed, err := adm.CommitOffsets(ctx, app, appOffs)
	require.NoError(t, err)
	require.NoError(t, committed.Error())

	// Exactly the documented ACLs, nothing else.
	described, err := adm.DescribeACLs(ctx, kadm.NewACLs().Allow(principal).AllowHosts().Deny(principal).DenyHosts().
		AnyResource().ResourcePatternType(kadm.ACLPatternAny).Operations(kadm.OpAny))
	require.NoError(t, err)
	var acls []string
	for _, d := range described {
		require.NoError(t, d.Err)
		for _, a := range d.Described {
			acls = append(acls, fmt.Sprintf("%s %s %s %s:%s", a.Permission, a.Operation, a.Pattern, a.Type, a.Name))
		}
	}
	assert.ElementsMatch(t, []string{
		"ALLOW READ PREFIXED TOPIC:" + prefix,
		"ALLOW READ LITERAL GROUP:" + group,
		"ALLOW DESCRIBE LITERAL GROUP:*",
		"ALLOW READ LITERAL TOPIC:" + dlq,
	}, acls)

	kc := k.Conn("scram-sha-256", user, pw)
	c := startSecureTap(t, kc, store, group, "(?:"+regexp.QuoteMeta(prefix)+".*|"+regexp.QuoteMeta(secret)+")")
	secWaitStored(t, c, 14)

	// The tap committed in its own group, with READ on it.
	require.Eventually(t, func() bool {
		offs, err := adm.FetchOffsetsForTopics(ctx, group, topics...)
		if err != nil || offs.Error() != nil {
			return false
		}
		var sum int64
		offs.Each(func(o kadm.OffsetResponse) { sum += max(o.At, 0) }) // -1: nothing committed
		return sum == 14
	}, 10*time.Second, 100*time.Millisecond, "the tap commits its offsets in %s", group)

	// Queue health works with these ACLs: the application's lag, the tap's,
	// and the dead-letter topic's depth and oldest record.
	lcfg := queuehealth.Default()
	lcfg.Groups.Include = []string{regexp.QuoteMeta(app), regexp.QuoteMeta(group)}
	tapped := queuehealth.Topics{Include: []string{regexp.QuoteMeta(prefix) + ".*"}, Exclude: Default().Topics.Exclude}
	lm, err := queuehealth.New(lcfg, tapped, kc, nil, queuehealth.Settings{Logger: zerolog.Nop()})
	require.NoError(t, err)
	require.NoError(t, lm.Start(ctx))
	rep, err := lm.Sample(ctx)
	require.NoError(t, lm.Shutdown(context.Background()))
	require.NoError(t, err)
	lagOf := func(g, topic string) int64 {
		for _, gl := range rep.Groups {
			if gl.Group == g && gl.Topic == topic {
				return gl.LagMessages
			}
		}
		return -1
	}
	assert.Equal(t, int64(7-1), lagOf(app, topics[0]), "%+v", rep.Groups)
	assert.Equal(t, int64(0), lagOf(group, topics[0]), "%+v", rep.Groups)
	assert.Equal(t, int64(0), lagOf(group, topics[1]), "%+v", rep.Groups)
	var dlqHealth *queuehealth.TopicHealth
	for i := range rep.Topics {
		assert.NotEqual(t, secret, rep.Topics[i].Topic)
		if rep.Topics[i].Topic == dlq {
			dlqHealth = &rep.Topics[i]
		}
	}
	require.NotNil(t, dlqHealth, "%+v", rep.Topics)
	assert.Equal(t, int64(2), dlqHealth.DepthMessages)
	assert.GreaterOrEqual(t, dlqHealth.OldestAgeSeconds, 0.0, "the DLQ's oldest record was read")

	// The admin reads behind it, one by one: topics, their offsets, every
	// group, its state and its commits.
	tapAdm := kadm.NewClient(k.Client(t, kc))
	listed, err := tapAdm.ListTopics(ctx)
	require.NoError(t, err)
	assert.ElementsMatch(t, topics, secFilterPrefix(listed.Names(), prefix, secret), "the secret topic is not even listed")
	ends, err := tapAdm.ListEndOffsets(ctx, topics...)
	require.NoError(t, err)
	require.NoError(t, ends.Error())
	var total int64
	ends.Each(func(o kadm.ListedOffset) { total += o.Offset })
	assert.Equal(t, int64(14), total, "nothing was written to the tapped topics")
	groups, err := tapAdm.ListGroups(ctx)
	require.NoError(t, err)
	assert.Contains(t, groups.Groups(), app)
	assert.Contains(t, groups.Groups(), group)
	dg, err := tapAdm.DescribeGroups(ctx, app)
	require.NoError(t, err)
	require.NoError(t, dg.Error())
	appCommitted, err := tapAdm.FetchOffsets(ctx, app)
	require.NoError(t, err)
	require.NoError(t, appCommitted.Error())
	o, ok := appCommitted.Lookup(topics[0], 0)
	require.True(t, ok)
	assert.Equal(t, int64(1), o.At)

	// The secret topic existed, with records, before the tap read the topic
	// list: the broker left it out, so it is not tapped, and not an error.
	assert.Equal(t, Stats{Consumed: 14, Stored: 14}, c.Stats())
	got := secStoredEventIDs(t, store)
	for _, topic := range topics {
		assert.ElementsMatch(t, want[topic], got[topic], topic)
	}
	assert.NotContains(t, got, secret)

	// Nothing the tap or the lag monitor did was denied: they never tried to
	// produce, to commit elsewhere, or to read what they may not.
	assert.Empty(t, k.Denials(t, principal), "weft made requests its ACLs forbid")

	// The same principal cannot produce: an idempotent producer is refused
	// its producer id, a plain one the write itself ...
	forged := func() *kgo.Record { return &kgo.Record{Topic: topics[0], Value: []byte(`{"event_id":"forged"}`)} }
	idem := k.Client(t, kc, kgo.RecordRetries(1))
	err = idem.ProduceSync(ctx, forged()).FirstErr()
	assert.ErrorIs(t, err, kerr.ClusterAuthorizationFailed, "InitProducerId needs IDEMPOTENT_WRITE or WRITE")
	plain := k.Client(t, kc, kgo.RecordRetries(1), kgo.DisableIdempotentWrite())
	err = plain.ProduceSync(ctx, forged()).FirstErr()
	assert.ErrorIs(t, err, kerr.TopicAuthorizationFailed)
	// ... nor commit for a group other than its own, though it may see it.
	var offs kadm.Offsets
	offs.Add(kadm.Offset{Topic: topics[0], Partition: 0, At: 5, LeaderEpoch: -1})
	resp, err := kadm.NewClient(plain).CommitOffsets(ctx, app, offs)
	if err == nil {
		err = resp.Error()
	}
	assert.ErrorIs(t, err, kerr.GroupAuthorizationFailed)
	// The attempts are in the authorizer log, so its silence above was not
	// for lack of logging; and they are all it holds for this principal.
	// (A denied InitProducerId is not logged by Kafka.)
	var write, commit, stray []string
	for _, d := range k.Denials(t, principal) {
		switch {
		case strings.Contains(d, "Denied operation = WRITE ") && strings.Contains(d, "Topic:LITERAL:"+topics[0]+" "):
			write = append(write, d)
		case strings.Contains(d, "Denied operation = READ ") && strings.Contains(d, "Group:LITERAL:"+app+" "):
			commit = append(commit, d)
		default:
			stray = append(stray, d)
		}
	}
	assert.NotEmpty(t, write, "the denied produce is logged")
	assert.NotEmpty(t, commit, "the denied commit is logged")
	assert.Empty(t, stray)

	// And the cluster is as the test left it: the forged record is nowhere,
	// the application's commit unchanged.
	ends, err = adm.ListEndOffsets(ctx, topics...)
	require.NoError(t, err)
	total = 0
	ends.Each(func(o kadm.ListedOffset) { total += o.Offset })
	assert.Equal(t, int64(14), total)
	appCommitted, err = adm.FetchOffsets(ctx, app)
	require.NoError(t, err)
	o, _ = appCommitted.Lookup(topics[0], 0)
	assert.Equal(t, int64(1), o.At)
}

// secFilterPrefix keeps the names starting with one of prefixes.
func secFilterPrefix(names []string, prefixes ...string) []string {
	var out []string
	for _, n := range names {
		for _, p := range prefixes {
			if strings.HasPrefix(n, p) {
				out = append(out, n)
				break
			}
		}
	}
	return out
}

// TestSecurityNoWritePath: the collector package (the tap) and the
// queuehealth package (the lag monitor) call no Kafka API that writes to the cluster or commits for a
// group other than its own: nothing produces, nothing opens a transaction,
// no admin call changes topics, configs, ACLs, groups or offsets. The tap's
// own commits go through its group client (CommitUncommittedOffsets), which
// can only commit in the configured group. This reads the packages' source,
// so it runs under -short too; TestSecurityReadOnlyACLs proves the same on
// the wire, against a broker that would deny and log any such request.
func TestSecurityNoWritePath(t *testing.T) {
	forbidden := map[string]bool{
		// kgo: producing and transactions.
		"Produce": true, "ProduceSync": true, "TryProduce": true, "ProducerID": true,
		"BeginTransaction": true, "EndTransaction": true, "NewGroupTransactSession": true,
		"TransactionalID": true, "DefaultProduceTopic": true, "AllowAutoTopicCreation": true,
		// kadm: commits for any group, and every change to the cluster.
		"CommitOffsets": true, "CommitAllOffsets": true, "DeleteOffsets": true,
		"DeleteGroup": true, "DeleteGroups": true, "LeaveGroup": true,
		"CreateTopic": true, "CreateTopics": true, "DeleteTopic": true, "DeleteTopics": true,
		"DeleteRecords": true, "CreatePartitions": true, "UpdatePartitions": true,
		"AlterTopicConfigs": true, "AlterBrokerConfigs": true, "AlterTopicConfigsState": true,
		"AlterBrokerConfigsState": true, "CreateACLs": true, "DeleteACLs": true,
		"AlterUserSCRAMs": true, "AlterClientQuotas": true, "AlterPartitionAssignments": true,
		"ElectLeaders": true, "CreateDelegationToken": true,
	}
	var files []string
	for _, root := range []string{".", "../queuehealth"} {
		before := len(files)
		require.NoError(t, filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) && path != root {
				return filepath.SkipDir
			}
			if !d.IsDir() && strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, "_test.go") {
				files = append(files, path)
			}
			return nil
		}))
		require.Greater(t, len(files), before, "no source read in %s", root)
	}
	fset := token.NewFileSet()
	var found []string
	for _, path := range files {
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		require.NoError(t, err)
		ast.Inspect(f, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if forbidden[sel.Sel.Name] {
				found = append(found, fmt.Sprintf("%s: %s", fset.Position(sel.Pos()), sel.Sel.Name))
			}
			// Raw requests built: audit verify --kafka's Fetch, and the
			// tap's LeaveGroup of its own member from its own group on a
			// stop (groupleave.go, sendLeave: c.cfg.Group, the member id
			// the group gave it), which franz-go's own leave sends too.
			req := strings.TrimPrefix(strings.TrimPrefix(sel.Sel.Name, "NewPtr"), "New")
			ownLeave := filepath.Base(path) == "groupleave.go" && strings.HasPrefix(req, "LeaveGroupRequest")
			if x, ok := sel.X.(*ast.Ident); ok && x.Name == "kmsg" && strings.HasPrefix(sel.Sel.Name, "New") &&
				strings.Contains(sel.Sel.Name, "Request") && !strings.HasPrefix(req, "Fetch") && !ownLeave {
				found = append(found, fmt.Sprintf("%s: kmsg.%s", fset.Position(sel.Pos()), sel.Sel.Name))
			}
			return true
		})
	}
	assert.Empty(t, found, "the tap must stay read-only (docs/kafka-access.md)")
}
