package record

import (
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestRecordMarkerRoundTrip(t *testing.T) {
	for _, m := range []Marker{{Type: ControlCommit, CoordinatorEpoch: 7}, {Type: ControlAbort, CoordinatorEpoch: 0}} {
		batch, err := AppendMarker(nil, 42, 3, m, 1000)
		if err != nil {
			t.Fatal(err)
		}
		h, err := ValidateBatch(batch)
		if err != nil {
			t.Fatal(err)
		}
		if !h.IsControl() || !h.IsTransactional() || h.ProducerID != 42 || h.ProducerEpoch != 3 || h.BaseSequence != -1 || h.RecordCount != 1 {
			t.Fatalf("header %+v", h)
		}
		got, err := ParseMarker(batch)
		if err != nil || got != m {
			t.Fatalf("ParseMarker = %+v, %v; want %+v", got, err, m)
		}
		// What a Kafka client decodes from the same bytes.
		var key kmsg.ControlRecordKey
		var value kmsg.EndTxnMarker
		err = Records(batch, 1<<10, func(r *Record) error {
			if err := key.ReadFrom(r.Key); err != nil {
				return err
			}
			return value.ReadFrom(r.Value)
		})
		if err != nil {
			t.Fatal(err)
		}
		if int16(key.Type) != int16(m.Type) || value.CoordinatorEpoch != m.CoordinatorEpoch {
			t.Fatalf("kmsg reads type %v epoch %d, want %+v", key.Type, value.CoordinatorEpoch, m)
		}
	}
}

func TestRecordParseMarkerRefusesDataBatch(t *testing.T) {
	batch, err := AppendBatch(nil, BatchOptions{ProducerID: -1, BaseSequence: -1}, []Record{{Value: []byte("x")}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseMarker(batch); !errors.Is(err, ErrNotMarker) {
		t.Fatalf("ParseMarker of a data batch: %v", err)
	}
}

// FuzzParseMarker: any bytes either decode to a transaction marker of a
// control batch or give an error; never a panic, and a marker that decodes
// re-encodes to a batch that decodes the same.
func FuzzParseMarker(f *testing.F) {
	for _, m := range []Marker{{ControlCommit, 3}, {ControlAbort, -1}} {
		b, err := AppendMarker(nil, 9, 1, m, 5)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseMarker(data)
		if err != nil {
			return
		}
		again, err := AppendMarker(nil, 1, 0, m, 0)
		if err != nil {
			t.Fatal(err)
		}
		if back, err := ParseMarker(again); err != nil || back != m {
			t.Fatalf("marker %+v re-encoded decodes to %+v, %v", m, back, err)
		}
	})
}
