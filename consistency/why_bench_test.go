package consistency

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/weft-sh/weft/internal/event"
	"github.com/weft-sh/weft/internal/testenv"
)

// BenchmarkReexplain measures what explaining stuck orders again adds to a
// pass in which nothing changed, with a full page of stuck findings
// (reexplainPage): "same" when their explanation still holds and is
// recent (read and explain, nothing stored), "stored" when every one's
// figures are a minute old (stored again).
func BenchmarkReexplain(b *testing.B) {
	store := testenv.Store(b)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Millisecond)
	var evs []event.Event
	for i := range reexplainPage {
		id := fmt.Sprintf("o-%05d", i)
		evs = append(evs, event.Event{Topic: "orders", Partition: int32(i % 3), Offset: int64(i), EventID: id, Type: "OrderPlaced",
			Service: "orders", OrderID: id, EventTime: now.Add(-time.Hour), RecordTime: now.Add(-time.Hour), PayloadHash: id})
	}
	evs = append(evs, event.Event{Topic: "orders", Offset: 1 << 20, EventID: "new", Type: "OrderPlaced", Service: "orders",
		OrderID: "o-new", EventTime: now, RecordTime: now, PayloadHash: "new"})
	if err := store.InsertEvents(ctx, evs, time.Now().UTC(), ""); err != nil {
		b.Fatal(err)
	}
	e := NewEngine(store, Builtin())
	clock := clockwork.NewFakeClockAt(time.Now())
	e.wall = clock.Now
	d := NewDetector(e, time.Minute, Default().Windows, Settings{})
	if res, err := d.Pass(ctx); err != nil || res.Opened != reexplainPage {
		b.Fatalf("first pass: %+v, %v", res, err)
	}
	for _, tc := range []struct {
		name    string
		advance time.Duration
		want    int
	}{{"same", 0, 0}, {"stored", whyRefresh + time.Second, reexplainPage}} {
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				clock.Advance(tc.advance)
				res, err := d.Pass(ctx)
				if err != nil || res.Reexplained != tc.want {
					b.Fatalf("pass: %+v, %v", res, err)
				}
			}
		})
	}
}
