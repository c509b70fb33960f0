package partition

import (
	"bytes"
	"testing"
)

// TestReplicationWholeBatches: a fetch response cut inside a batch gives
// the follower the batches before the cut, never the partial one.
func TestReplicationWholeBatches(t *testing.T) {
	f := newFixture(t)
	one, two := f.batch(plain(3)), f.batch(plain(2))
	both := append(append([]byte{}, one...), two...)
	for _, tc := range []struct {
		name string
		in   []byte
		want []byte
	}{
		{"whole", both, both},
		{"cut inside the second batch", both[:len(one)+len(two)-1], one},
		{"cut inside the second header", both[:len(one)+10], one},
		{"cut inside the first batch", one[:len(one)-1], nil},
		{"empty", nil, nil},
	} {
		if got := wholeBatches(tc.in); !bytes.Equal(got, tc.want) {
			t.Errorf("%s: kept %d bytes, want %d", tc.name, len(got), len(tc.want))
		}
	}
	corrupt := append([]byte{}, one...)
	corrupt[16] = 99 // the magic byte: not a cut, a bad batch
	if got := wholeBatches(corrupt); len(got) != len(corrupt) {
		t.Errorf("a corrupt first batch is passed on for the append to refuse; kept %d of %d bytes", len(got), len(corrupt))
	}
}
