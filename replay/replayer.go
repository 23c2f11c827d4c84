package replay

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weft-sh/weft/internal/chstore"
	"github.com/weft-sh/weft/internal/kafkaconn"
)

// Settings is what the wiring passes in.
type Settings struct {
	Log   zerolog.Logger
	Store *chstore.Store
	// Kafka is replay's connection (Config.KafkaConfig), Brokers its
	// addresses for messages.
	Kafka   []kgo.Opt
	Brokers []string
	// Operator is who runs the jobs (the replay headers and the audit
	// trail name them), Origin where from.
	Operator, Origin string
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Events is told of each phase of a job (requested, started, resumed,
	// finished, cancelled, failed), for the audit trail; an error fails
	// the job. Optional.
	Events func(context.Context, Event) error
	// Progress is told after each committed batch. Optional.
	Progress func(j Job)
	// Committed is told after each committed batch how many records this
	// run produced to each target topic in it and how many it found gone
	// from Kafka (by the topic they were planned for), for metrics.
	// Optional.
	Committed func(produced, gone map[string]int)
	// Gone is told of each record that was in the plan and is no longer
	// in Kafka when the job reaches it. Optional.
	Gone func(Missing)
}

// Event is a phase of a job.
type Event struct {
	Phase   string
	Job     Job
	Targets []Position
}

// Replayer plans and runs replay jobs.
type Replayer struct {
	cfg    Config
	allow  allowList
	s      Settings
	cl     *kgo.Client
	adm    *kadm.Client
	reader *reader
}

// New validates cfg and builds a Replayer; it does no I/O. A disabled
// replay is refused here, before anything connects.
func New(cfg Config, s Settings) (*Replayer, error) {
	if !cfg.Enabled {
		return nil, refuse("replay is disabled: set replay.enabled and replay.allow (docs/replay.md)")
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("replay: %w", err)
	}
	allow, err := compileAllow(cfg.Allow)
	if err != nil {
		return nil, err
	}
	if s.Now == nil {
		s.Now = time.Now
	}
	if s.Events == nil {
		s.Events = func(context.Context, Event) error { return nil }
	}
	return &Replayer{cfg: cfg, allow: allow, s: s}, nil
}

// Start connects to Kafka and checks that it answers.
func (r *Replayer) Start(ctx context.Context) error {
	cl, err := kgo.NewClient(r.s.Kafka...)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	if err := kafkaconn.Ping(ctx, cl, r.s.Brokers, 10*time.Second); err != nil {
		cl.Close()
		return err
	}
	r.cl, r.adm = cl, kadm.NewClient(cl)
	r.reader = newReader(r.s.Kafka, r.adm)
	return nil
}

// Shutdown closes the Kafka clients. It is idempotent.
func (r *Replayer) Shutdown(context.Context) error {
	if r.reader != nil {
		r.reader.close()
	}
	if r.cl != nil {
		r.cl.Close()
		r.cl = nil
	}
	return nil
}

// Check refuses a plan with a target outside replay.allow or missing
// from Kafka, or with nothing to produce. Nothing has been produced.
func (r *Replayer) Check(ctx context.Context, p Plan) error {
	if len(p.Items) == 0 {
		return refuse("%s: nothing to produce (%d records gone from Kafka)", p.Resource, len(p.Missing))
	}
	return r.checkTargets(ctx, slices.Sorted(mapKeys(p.PerTopic())))
}

// CheckJob refuses a stored job with a target this process may not
// produce to: outside its replay.allow (the job may have been planned
// under another config) or missing from Kafka.
func (r *Replayer) CheckJob(ctx context.Context, j Job) error {
	targets, err := r.s.Store.ReplayTargets(ctx, j.ID)
	if err != nil {
		return err
	}
	if len(targets) == 0 {
		return refuse("replay job %s has no stored items", j.ID)
	}
	return r.checkTargets(ctx, targets)
}

func (r *Replayer) checkTargets(ctx context.Context, targets []string) error {
	var denied []string
	for _, t := range targets {
		if !r.allow.allows(t) {
			denied = append(denied, t)
		}
	}
	if len(denied) > 0 {
		return refuse("topic %s is not in replay.allow (%s)", strings.Join(denied, ", "), strings.Join(r.cfg.Allow, ", "))
	}
	if len(targets) == 0 {
		return nil
	}
	td, err := r.adm.ListTopics(ctx, targets...)
	if err != nil {
		return fmt.Errorf("kafka: list topics %v: %w", targets, err)
	}
	for _, t := range targets {
		if d, ok := td[t]; !ok || d.Err != nil {
			return refuse("target topic %s does not exist in Kafka (replay never creates topics)", t)
		}
	}
	return nil
}

// Job is a replay job as stored.
type Job struct {
	ID       string    `json:"id"`
	Kind     string    `json:"kind"`
	Resource string    `json:"resource"`
	Actor    string    `json:"actor"`
	Status   string    `json:"status"`
	Created  time.Time `json:"created"`
	Updated  time.Time `json:"updated"`
	Planned  uint64    `json:"planned"`
	// Cursor is how many items are known committed in Kafka; Produced
	// how many the job produced (the same once it finished), Missing how
	// many it found gone from Kafka on its way.
	Cursor   uint64 `json:"cursor"`
	Produced uint64 `json:"produced"`
	Missing  uint64 `json:"missing"`
	Rate     int    `json:"rate"`
	Detail   string `json:"detail,omitempty"`

	scanFrom map[string]int64
	version  uint64
}

// Statuses of a job.
const (
	StatusPlanned   = "planned"
	StatusRunning   = "running"
	StatusFinished  = "finished"
	StatusCancelled = "cancelled"
	StatusFailed    = "failed"
)

var jobIDPattern = regexp.MustCompile(`^rpl-[0-9a-f]{16}$`)

// ValidJobID reports whether id has the form of a job id (rpl- and 16
// hex digits).
func ValidJobID(id string) bool { return jobIDPattern.MatchString(id) }

func newJobID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return "rpl-" + hex.EncodeToString(b)
}

// Create stores a checked plan as a job, to be run with Run: its items,
// and where a resume reads its targets from (their ends now).
func (r *Replayer) Create(ctx context.Context, p Plan, rate int) (Job, error) {
	now := r.s.Now().UTC()
	j := Job{ID: newJobID(), Kind: p.Kind, Resource: p.Resource, Actor: r.s.Operator, Status: StatusPlanned,
		Created: now, Updated: now, Planned: uint64(len(p.Items)), Rate: rate, scanFrom: map[string]int64{},
		Detail: fmt.Sprintf("%d records to %s; %d gone from Kafka", len(p.Items), perTopicText(p.PerTopic()), len(p.Missing))}
	targets := slices.Sorted(mapKeys(p.PerTopic()))
	ends, err := r.adm.ListEndOffsets(ctx, targets...)
	if err != nil {
		return Job{}, fmt.Errorf("kafka: list end offsets of %v: %w", targets, err)
	}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err == nil {
			j.scanFrom[tpKey(o.Topic, o.Partition)] = o.Offset
		}
	})
	rows := make([]chstore.ReplayItemRow, len(p.Items))
	sources := make([]Position, len(p.Items))
	for i, it := range p.Items {
		rows[i] = chstore.ReplayItemRow{Seq: it.Seq, Topic: it.From.Topic, Partition: it.From.Partition, Offset: it.From.Offset, Target: it.To}
		sources[i] = it.From
	}
	if err := r.s.Store.InsertReplayItems(ctx, j.ID, rows); err != nil {
		return Job{}, err
	}
	if err := r.save(ctx, &j); err != nil {
		return Job{}, err
	}
	if err := r.s.Events(ctx, Event{Phase: "requested", Job: j, Targets: sources}); err != nil {
		return j, err
	}
	return j, nil
}

// Load reads a job; a job id that is malformed or unknown is refused.
func (r *Replayer) Load(ctx context.Context, id string) (Job, error) {
	return LoadJob(ctx, r.s.Store, id)
}

// LoadJob reads a job from store; a job id that is malformed or unknown
// is refused.
func LoadJob(ctx context.Context, store *chstore.Store, id string) (Job, error) {
	if !ValidJobID(id) {
		return Job{}, refuse("%q is not a replay job id (rpl- and 16 hex digits)", id)
	}
	row, found, err := store.ReplayJob(ctx, id)
	if err != nil {
		return Job{}, err
	}
	if !found {
		return Job{}, refuse("no replay job %s", id)
	}
	return Job{ID: row.JobID, Kind: row.Kind, Resource: row.Resource, Actor: row.Actor, Status: row.Status,
		Created: row.CreatedAt, Updated: row.UpdatedAt, Planned: row.Planned, Cursor: row.Cursor, Produced: row.Produced,
		Missing: row.Missing, Rate: int(row.Rate), Detail: row.Detail, scanFrom: row.ScanFrom, version: row.Version}, nil
}

// save stores a new version of j.
func (r *Replayer) save(ctx context.Context, j *Job) error {
	j.Updated = r.s.Now().UTC()
	j.version = max(j.version+1, uint64(time.Now().UnixNano()))
	return r.s.Store.InsertReplayJob(ctx, chstore.ReplayJobRow{JobID: j.ID, Kind: j.Kind, Resource: j.Resource, Actor: j.Actor,
		Origin: r.s.Origin, CreatedAt: j.Created, UpdatedAt: j.Updated, Status: j.Status, Planned: j.Planned, Cursor: j.Cursor,
		Produced: j.Produced, Missing: j.Missing, Rate: uint32(max(j.Rate, 0)), ScanFrom: j.scanFrom, Detail: j.Detail, Version: j.version})
}

func tpKey(topic string, p int32) string { return fmt.Sprintf("%s/%d", topic, p) }

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func perTopicText(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s (%d)", k, m[k])
	}
	return strings.Join(parts, ", ")
}

// SetProgress sets the function told after each committed batch.
func (r *Replayer) SetProgress(fn func(Job)) { r.s.Progress = fn }

// SetCommitted sets the function told, after each committed batch, the
// records produced and found gone per target topic (Settings.Committed).
func (r *Replayer) SetCommitted(fn func(produced, gone map[string]int)) { r.s.Committed = fn }

// States are the statuses a job can have, in the order they are shown.
var States = []string{StatusPlanned, StatusRunning, StatusFinished, StatusCancelled, StatusFailed}

// Cancel cancels a job no process is running: planned (never started),
// failed or cancelled before. A finished job is refused; a running one
// must be stopped where it runs. A cancelled job can still be resumed.
func (r *Replayer) Cancel(ctx context.Context, id string) (Job, error) {
	j, err := r.Load(ctx, id)
	if err != nil {
		return Job{}, err
	}
	switch j.Status {
	case StatusFinished:
		return j, refuse("replay job %s is finished (%d records produced): nothing to cancel", j.ID, j.Produced)
	case StatusRunning:
		return j, refuse("replay job %s is running in another process (a weft replay or another weft run): stop it there; if that process is gone, resuming the job finishes it", j.ID)
	}
	j.Status, j.Detail = StatusCancelled, "cancelled by "+r.s.Operator
	if err := r.save(ctx, &j); err != nil {
		return j, err
	}
	return j, r.s.Events(ctx, Event{Phase: "cancelled", Job: j})
}
