package collector

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// How the tap leaves its consumer group: on a graceful stop, within a few
// seconds whatever the group's state, and for good when the broker fenced
// its instance id (docs/delivery.md, "Restarts and replicas").

// FencedError is what Run returns when the broker fenced the tap: another
// process joined the group with the same instance id, and the broker
// keeps the newer one. The tap stops instead of joining again, which would
// fence the other in turn, and so on.
type FencedError struct {
	Group, InstanceID string
}

func (e *FencedError) Error() string {
	return fmt.Sprintf("consumer group %q: another process joined with this tap's instance id %q and the broker fenced this one (FENCED_INSTANCE_ID); "+
		"it stops rather than take the id back, which would fence the other: give every replica its own collector.instance_id (in Kubernetes, $POD_NAME)",
		e.Group, e.InstanceID)
}

// Unwrap makes errors.Is(err, kerr.FencedInstanceID) true.
func (e *FencedError) Unwrap() error { return kerr.FencedInstanceID }

// groupErrors is a franz-go hook: the error that ended a group session.
// franz-go calls it from its group loop after the partitions were lost,
// before it waits to join again, so fencing the tap here (which cancels
// the client) means it never joins again.
type groupErrors struct{ c *Collector }

var _ kgo.HookGroupManageError = groupErrors{}

func (h groupErrors) OnGroupManageError(err error) {
	if errors.Is(err, kerr.FencedInstanceID) {
		h.c.fence()
	}
}

// fence stops the tap for good: the client's requests end (no join, no
// commit), its logger is muted (its lines about the ended session would
// only repeat the error Run returns), and Run returns a FencedError.
func (c *Collector) fence() {
	c.fenceOnce.Do(func() {
		c.klog.Mute(true)
		c.cancelClient()
		close(c.fenced)
	})
}

func (c *Collector) isFenced() bool {
	select {
	case <-c.fenced:
		return true
	default:
		return false
	}
}

func (c *Collector) fencedError() error {
	return &FencedError{Group: c.cfg.Group, InstanceID: c.cfg.InstanceID}
}

// leaveTimeout bounds each of the two steps of leaving the group.
const leaveTimeout = 2 * time.Second

// leave leaves the group on a graceful stop, in at most two leaveTimeouts.
//
// franz-go's leave (LeaveGroupContext) stops heartbeating, revokes what the
// tap owns and, for a member without an instance id, sends a LeaveGroup.
// But it first waits for a join or sync in flight, and while the group
// waits for a member that died, that lasts until the dead member's
// session expires (a stop took 34–47 s). And for a static member it sends
// no LeaveGroup at all, so its partitions would wait out the session
// timeout for a replica with the same id. So the tap gives it
// leaveTimeout, then, when it timed out or the member is static and
// collector.leave_group_on_stop is set, sends the LeaveGroup itself. The
// request names the member id the tap had: if another process has taken
// the instance id over since, the broker refuses it rather than removing
// that process.
func (c *Collector) leave(ctx context.Context) {
	member, _ := c.client.GroupMetadata()
	lctx, cancel := context.WithTimeout(ctx, leaveTimeout)
	err := c.client.LeaveGroupContext(lctx)
	cancel()
	static := c.cfg.InstanceID != ""
	log := c.log.With().Str("group", c.cfg.Group).Str("member_id", member).Str("instance_id", c.cfg.InstanceID).Logger()
	switch {
	case member == "":
		return // never joined: nothing to leave
	case err == nil && !static:
		log.Info().Msg("left the consumer group: its partitions move to the other replicas now")
		return
	case err == nil && !c.cfg.LeaveGroupOnStop:
		log.Info().Dur("session_timeout", c.cfg.SessionTimeout).
			Msg("stopped without leaving the consumer group (collector.leave_group_on_stop false): a replica with this instance id gets its partitions back at once; otherwise they move when the session timeout passes")
		return
	case err != nil && !errors.Is(err, context.DeadlineExceeded):
		log.Warn().Err(err).Dur("session_timeout", c.cfg.SessionTimeout).
			Msg("could not leave the consumer group: its partitions move to the other replicas when the session timeout passes")
		return
	case err != nil:
		// franz-go is still in a join: it ends with the client, and what
		// it logs about that is noise now.
		c.klog.Mute(true)
		log.Warn().Dur("waited", leaveTimeout).Msg("the consumer group is rebalancing: stopped waiting for it; leaving it without")
	}
	lctx, cancel = context.WithTimeout(ctx, leaveTimeout)
	defer cancel()
	if err := c.sendLeave(lctx, member); err != nil {
		log.Warn().Err(err).Dur("session_timeout", c.cfg.SessionTimeout).
			Msg("could not leave the consumer group: its partitions move to the other replicas when the session timeout passes")
		return
	}
	log.Info().Msg("left the consumer group: its partitions move to the other replicas now")
}

// sendLeave asks the group's coordinator to remove member (with the tap's
// instance id, if any). A member the group no longer has is left already.
func (c *Collector) sendLeave(ctx context.Context, member string) error {
	req := kmsg.NewPtrLeaveGroupRequest()
	req.Group = c.cfg.Group
	req.MemberID = member // before v3
	m := kmsg.NewLeaveGroupRequestMember()
	m.MemberID = member
	if c.cfg.InstanceID != "" {
		m.InstanceID = kmsg.StringPtr(c.cfg.InstanceID)
	}
	m.Reason = kmsg.StringPtr("weft stopping")
	req.Members = append(req.Members, m)
	resp, err := req.RequestWith(ctx, c.client)
	if err != nil {
		return err
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil && !errors.Is(err, kerr.UnknownMemberID) {
		return err
	}
	for _, m := range resp.Members {
		if err := kerr.ErrorForCode(m.ErrorCode); err != nil && !errors.Is(err, kerr.UnknownMemberID) {
			return err
		}
	}
	return nil
}
