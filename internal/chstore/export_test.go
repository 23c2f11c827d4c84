package chstore

import (
	"time"

	"github.com/ClickHouse/ch-go"
	"github.com/ClickHouse/ch-go/proto"
)

// SetInsertBlocks sets the rows per block of s's batch inserts and a hook
// run after each block is sent (nil for none); an error from the hook
// aborts the insert there.
func SetInsertBlocks(s *Store, rows int, afterBlock func(sent int) error) {
	s.ins.blockRows = rows
	s.ins.afterBlock = afterBlock
}

// ServerCPU makes s's batch inserts add the server's CPU time for each
// (user and system, from the profile events ClickHouse sends) to *total.
func ServerCPU(s *Store, total *time.Duration) {
	s.ins.profile = func(events []ch.ProfileEvent) {
		for _, e := range events {
			if e.Type == proto.ProfileIncrement && (e.Name == "UserTimeMicroseconds" || e.Name == "SystemTimeMicroseconds") {
				*total += time.Duration(e.Value) * time.Microsecond
			}
		}
	}
}

// ClusterStatements is clusterStatements.
var ClusterStatements = clusterStatements

// MigrationStatements returns every statement of the embedded migrations,
// as written for one server, with the migration's name.
func MigrationStatements() (names, stmts []string) {
	for _, m := range (&Store{}).migrations(nil) {
		for _, stmt := range splitStatements(m.body) {
			names, stmts = append(names, m.name), append(stmts, stmt)
		}
	}
	return names, stmts
}
