package chstore

import (
	"context"
	"fmt"
	"time"
)

// DetectorState reads the latest state stored under name in detector_state
// (the consistency detector's cursors, as JSON); "" when there is none.
func (s *Store) DetectorState(ctx context.Context, name string) (string, error) {
	var raw string
	if err := s.conn.QueryRow(ctx, "SELECT argMax(state, updated_at) FROM "+s.Table("detector_state")+
		" WHERE name = ?", name).Scan(&raw); err != nil {
		return "", fmt.Errorf("read detector state: %w", err)
	}
	return raw, nil
}

// SaveDetectorState stores a new version of the state under name, as of at
// (the detector's heartbeat).
func (s *Store) SaveDetectorState(ctx context.Context, name, state string, at time.Time) error {
	if err := s.conn.Exec(ctx, "INSERT INTO "+s.Table("detector_state")+" (name, state, updated_at) VALUES (?, ?, "+msParam+")",
		name, state, at.UnixMilli()); err != nil {
		return fmt.Errorf("store detector state: %w", err)
	}
	return nil
}
