package testenv

import "testing"

func TestLocalStatement(t *testing.T) {
	for _, tc := range []struct{ stmt, want string }{
		{"ALTER TABLE db.events UPDATE payload = 'x' WHERE offset = 1", "ALTER TABLE db.events_local UPDATE payload = 'x' WHERE offset = 1"},
		{"ALTER TABLE db.audit_leaves DELETE WHERE leaf_index >= ?", "ALTER TABLE db.audit_leaves_local DELETE WHERE leaf_index >= ?"},
		{"OPTIMIZE TABLE db.events FINAL", "OPTIMIZE TABLE db.events_local FINAL"},
		{"TRUNCATE TABLE db.audit_leaves", "TRUNCATE TABLE db.audit_leaves_local"},
		{"ALTER TABLE events DELETE WHERE 1", ""}, // not named in full
		{"INSERT INTO db.events SELECT * FROM db.saved", ""},
	} {
		got, ok := localStatement(tc.stmt)
		if got != tc.want || ok != (tc.want != "") {
			t.Errorf("localStatement(%q) = %q, %v; want %q", tc.stmt, got, ok, tc.want)
		}
	}
}
