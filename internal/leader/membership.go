package leader

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The group protocol, spoken by hand with kmsg as Kafka Connect's and
// Schema Registry's leader election speak it: kgo.Client.Request sends
// group requests to the group's coordinator (finding it first, and again
// when it moves).

const (
	// protocolType keeps consumers out of the group, and weft out of
	// theirs: the coordinator refuses a member of another type.
	protocolType = "weft-leader"
	// protocolName is the one protocol every replica offers.
	protocolName = "elect"
)

// errRejoin says the group rebalances (or moved on without this
// replica): join again at once.
var errRejoin = errors.New("rejoin")

// member joins the group and heartbeats until the group rebalances, the
// coordinator forgets this replica, or ctx ends (nil), or a request
// fails in a way a retry at once will not fix (the error).
func (e *Elector) member(ctx context.Context) error {
	leads, err := e.join(ctx)
	if err != nil {
		return rejoinAtOnce(err)
	}
	sent := e.clock.Now()
	if err := e.sync(ctx, leads); err != nil {
		return rejoinAtOnce(err)
	}
	e.lastErr = ""
	if leads {
		e.lead(sent, "the coordinator named this replica leader")
	} else {
		e.unlead("the coordinator named another replica leader")
	}
	hb := e.clock.NewTicker(e.cfg.heartbeat())
	defer hb.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-hb.Chan():
		}
		sent := e.clock.Now()
		err := e.heartbeat(ctx)
		switch {
		case err == nil && leads:
			// Still the leader of this generation (a generation's
			// leader never changes): the term goes on, or starts
			// again after the fence ended it during a blip.
			e.lead(sent, "heartbeats answered again")
		case err == nil:
		case errors.Is(err, errRejoin):
			return nil
		case ctx.Err() != nil:
			return nil
		case kerr.IsRetriable(err) || !isKafkaError(err):
			// The coordinator moves or does not answer: heartbeat again;
			// the fence ends a term that goes unconfirmed.
			e.log.Debug().Err(err).Msg("heartbeat failed")
		default:
			return err
		}
	}
}

// rejoinAtOnce turns errRejoin into nil (Run joins again without waiting).
func rejoinAtOnce(err error) error {
	if errors.Is(err, errRejoin) {
		return nil
	}
	return err
}

func isKafkaError(err error) bool {
	var ke *kerr.Error
	return errors.As(err, &ke)
}

// join sends JoinGroup until the coordinator answers with a generation,
// and reports whether it named this replica leader.
func (e *Elector) join(ctx context.Context) (leads bool, err error) {
	for range 3 { // MEMBER_ID_REQUIRED, then the join proper
		req := kmsg.NewPtrJoinGroupRequest()
		req.Group = e.cfg.Group
		req.SessionTimeoutMillis = int32(e.cfg.SessionTimeout / time.Millisecond)
		// Not shorter than the session: a leader that stops heartbeating
		// during a rebalance is dropped no sooner than its session would
		// have ended, which its fence counts on.
		req.RebalanceTimeoutMillis = req.SessionTimeoutMillis
		req.MemberID = e.memberID
		req.ProtocolType = protocolType
		p := kmsg.NewJoinGroupRequestProtocol()
		p.Name, p.Metadata = protocolName, []byte{}
		req.Protocols = append(req.Protocols, p)
		resp, err := req.RequestWith(ctx, e.client)
		if err != nil {
			return false, fmt.Errorf("join group %s: %w", e.cfg.Group, err)
		}
		switch err := kerr.ErrorForCode(resp.ErrorCode); {
		case err == nil:
			e.memberID, e.generation = resp.MemberID, resp.Generation
			e.members = e.members[:0]
			for _, m := range resp.Members {
				e.members = append(e.members, m.MemberID)
			}
			return resp.LeaderID == resp.MemberID, nil
		case errors.Is(err, kerr.MemberIDRequired):
			// KIP-394: the coordinator gives the id to join with.
			e.memberID = resp.MemberID
		case errors.Is(err, kerr.UnknownMemberID):
			e.unlead("the group no longer counts this replica a member")
			e.memberID = ""
		default: // REBALANCE_IN_PROGRESS too: join again after a pause
			return false, fmt.Errorf("join group %s: %w", e.cfg.Group, err)
		}
	}
	return false, fmt.Errorf("join group %s: no generation after three joins", e.cfg.Group)
}

// sync completes the generation: the leader hands every member an empty
// assignment (there is nothing to assign but the leadership itself).
func (e *Elector) sync(ctx context.Context, leads bool) error {
	req := kmsg.NewPtrSyncGroupRequest()
	req.Group, req.Generation, req.MemberID = e.cfg.Group, e.generation, e.memberID
	req.ProtocolType, req.Protocol = kmsg.StringPtr(protocolType), kmsg.StringPtr(protocolName)
	if leads {
		for _, id := range e.members {
			a := kmsg.NewSyncGroupRequestGroupAssignment()
			a.MemberID, a.MemberAssignment = id, []byte{}
			req.GroupAssignment = append(req.GroupAssignment, a)
		}
	}
	resp, err := req.RequestWith(ctx, e.client)
	if err != nil {
		return fmt.Errorf("sync group %s: %w", e.cfg.Group, err)
	}
	return e.answer("sync group", resp.ErrorCode)
}

// heartbeat tells the coordinator this replica is alive.
func (e *Elector) heartbeat(ctx context.Context) error {
	req := kmsg.NewPtrHeartbeatRequest()
	req.Group, req.Generation, req.MemberID = e.cfg.Group, e.generation, e.memberID
	resp, err := req.RequestWith(ctx, e.client)
	if err != nil {
		return fmt.Errorf("heartbeat to group %s: %w", e.cfg.Group, err)
	}
	return e.answer("heartbeat to group", resp.ErrorCode)
}

// answer reads a SyncGroup or Heartbeat error code: errRejoin when the
// group rebalances or moved on without this replica, which then stops
// leading unless it is still a member (a rebalance: it leads on until
// the new generation says otherwise, or its fence).
func (e *Elector) answer(what string, code int16) error {
	switch err := kerr.ErrorForCode(code); {
	case err == nil:
		return nil
	case errors.Is(err, kerr.RebalanceInProgress):
		return errRejoin
	case errors.Is(err, kerr.UnknownMemberID):
		e.unlead("the group no longer counts this replica a member")
		e.memberID = ""
		return errRejoin
	case errors.Is(err, kerr.IllegalGeneration):
		e.unlead("the group moved to a generation without this replica")
		return errRejoin
	default:
		return fmt.Errorf("%s %s: %w", what, e.cfg.Group, err)
	}
}

// leave leaves the group, so the coordinator names another leader now
// rather than after the session timeout.
func (e *Elector) leave() {
	if e.memberID == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req := kmsg.NewPtrLeaveGroupRequest()
	req.Group, req.MemberID = e.cfg.Group, e.memberID
	m := kmsg.NewLeaveGroupRequestMember()
	m.MemberID, m.Reason = e.memberID, kmsg.StringPtr("weft replica stopping")
	req.Members = append(req.Members, m)
	resp, err := req.RequestWith(ctx, e.client)
	if err == nil {
		err = kerr.ErrorForCode(resp.ErrorCode)
		for _, m := range resp.Members {
			err = errors.Join(err, kerr.ErrorForCode(m.ErrorCode))
		}
	}
	if err != nil {
		e.log.Warn().Err(err).Str("group", e.cfg.Group).
			Msg("leaving the leader group failed: another replica leads once this one's session times out")
		return
	}
	e.memberID = ""
}
