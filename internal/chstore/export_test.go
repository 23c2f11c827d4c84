package chstore

// SetInsertBlocks sets the rows per block of s's event inserts and a hook
// run after each block is sent (nil for none); an error from the hook
// aborts the insert there.
func SetInsertBlocks(s *Store, rows int, afterBlock func(sent int) error) {
	s.events.blockRows = rows
	s.events.afterBlock = afterBlock
}
