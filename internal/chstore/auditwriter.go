package chstore

import (
	"time"

	"github.com/ClickHouse/ch-go/proto"
)

// leafWriter holds the columns of audit_leaves (migrations/011_audit.sql),
// filled for each block of an insert over the insert connection
// (insertconn.go), as the events' are.
type leafWriter struct {
	topic, kind   *proto.ColLowCardinality[string]
	partition     proto.ColInt32
	leafIndex     proto.ColUInt64
	offset, end   proto.ColInt64
	orderID, leaf proto.ColStr
	salt, state   proto.ColStr
	leafHash      proto.ColFixedStr
	storedAt      *proto.ColDateTime64
	input         proto.Input
}

func newLeafWriter() *leafWriter {
	w := &leafWriter{topic: new(proto.ColStr).LowCardinality(), kind: new(proto.ColStr).LowCardinality(),
		storedAt: new(proto.ColDateTime64).WithPrecision(proto.PrecisionMilli).WithLocation(time.UTC)}
	w.leafHash.SetSize(32)
	w.input = proto.Input{
		{Name: "topic", Data: w.topic},
		{Name: "partition", Data: &w.partition},
		{Name: "leaf_index", Data: &w.leafIndex},
		{Name: "kind", Data: w.kind},
		{Name: "offset", Data: &w.offset},
		{Name: "end", Data: &w.end},
		{Name: "order_id", Data: &w.orderID},
		{Name: "leaf", Data: &w.leaf},
		{Name: "leaf_hash", Data: &w.leafHash},
		{Name: "salt", Data: &w.salt},
		{Name: "state", Data: &w.state},
		{Name: "stored_at", Data: w.storedAt},
	}
	return w
}

// fill resets the columns and appends rows.
func (w *leafWriter) fill(rows []AuditLeafRow, at time.Time) {
	w.input.Reset()
	for i := range rows {
		r := &rows[i]
		w.topic.Append(r.Topic)
		w.partition.Append(r.Partition)
		w.leafIndex.Append(r.LeafIndex)
		w.kind.Append(r.Kind)
		w.offset.Append(r.Offset)
		w.end.Append(r.End)
		w.orderID.Append(r.OrderID)
		w.leaf.AppendBytes(r.Leaf)
		w.leafHash.Append(r.LeafHash[:])
		w.salt.AppendBytes(r.Salt)
		w.state.AppendBytes(r.State)
		w.storedAt.Append(at)
	}
}
