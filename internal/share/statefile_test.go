package share

import (
	"errors"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/sluicelog/sluice/internal/coord/sharegroup"
	"github.com/sluicelog/sluice/internal/vfs"
)

func testState(n int) sharegroup.PartitionState {
	st := sharegroup.PartitionState{StateEpoch: 3, StartOffset: 100}
	for i := range n {
		o := int64(100 + 2*i)
		st.Batches = append(st.Batches, sharegroup.StateBatch{FirstOffset: o, LastOffset: o + 1,
			State: []sharegroup.RecordState{sharegroup.Available, sharegroup.Acknowledged, sharegroup.Archived}[i%3], DeliveryCount: int16(i%5 + 1)})
	}
	return st
}

func TestShareStateFileRoundTrip(t *testing.T) {
	for _, n := range []int{0, 1, 7} {
		st := testState(n)
		got, err := decodeState(encodeState(st))
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Batches) == 0 {
			st.Batches = []sharegroup.StateBatch{}
		}
		if !reflect.DeepEqual(got, st) {
			t.Errorf("%d batches: got %+v, want %+v", n, got, st)
		}
	}
}

// TestShareStateFileRejectsEveryCorruption: a flipped bit anywhere and a
// cut anywhere are ErrCorruptState, never a wrong state.
func TestShareStateFileRejectsEveryCorruption(t *testing.T) {
	b := encodeState(testState(4))
	for i := range len(b) * 8 {
		c := append([]byte(nil), b...)
		c[i/8] ^= 1 << (i % 8)
		if _, err := decodeState(c); !errors.Is(err, ErrCorruptState) {
			t.Fatalf("bit %d flipped: %v", i, err)
		}
	}
	for n := range len(b) {
		if _, err := decodeState(b[:n]); !errors.Is(err, ErrCorruptState) {
			t.Fatalf("cut at %d: %v", n, err)
		}
	}
}

// TestShareStateSurvivesCrash: once a write returns, every crash of the
// file system keeps that state, including the first write of a group,
// which creates its directories; a second write replaces it whole.
func TestShareStateSurvivesCrash(t *testing.T) {
	fs := vfs.NewMem()
	fs.SetStrictMkdir(true)
	if err := fs.MkdirAll("/data", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := fs.SyncDir("/"); err != nil {
		t.Fatal(err)
	}
	dirs := stateDirs{fs: fs, root: "/data", ready: map[string]bool{}}
	path := statePath("/data", "orders/eu", "t", 3)
	for step, st := range []sharegroup.PartitionState{testState(2), testState(5)} {
		if err := dirs.write(path, st); err != nil {
			t.Fatal(err)
		}
		for seed := range uint64(20) {
			crashed := fs.CrashClone(rand.New(rand.NewPCG(seed, uint64(step))))
			got, found, err := readState(crashed, path, 100)
			if err != nil || !found || !reflect.DeepEqual(got, st) {
				t.Fatalf("step %d seed %d: found=%v err=%v got %+v, want %+v", step, seed, found, err, got, st)
			}
		}
	}
	if _, _, err := readState(fs, path, 2); !errors.Is(err, vfs.ErrFileTooLarge) {
		t.Errorf("a state larger than its bound: %v, want ErrFileTooLarge", err)
	}
	// A deleted group's state is gone in every crash after the delete.
	if err := dirs.removeGroup("orders/eu"); err != nil {
		t.Fatal(err)
	}
	for seed := range uint64(20) {
		crashed := fs.CrashClone(rand.New(rand.NewPCG(seed, 9)))
		if _, found, err := readState(crashed, path, 100); found || err != nil {
			t.Fatalf("seed %d: deleted state found=%v err=%v", seed, found, err)
		}
	}
}

// FuzzShareStateDecode: any bytes decode to a state that encodes back to
// the same bytes, or to ErrCorruptState; never a panic.
func FuzzShareStateDecode(f *testing.F) {
	f.Add(encodeState(testState(0)))
	f.Add(encodeState(testState(3)))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := decodeState(b)
		if err != nil {
			if !errors.Is(err, ErrCorruptState) {
				t.Fatalf("error %v is not ErrCorruptState", err)
			}
			return
		}
		if again := encodeState(st); string(again) != string(b) {
			t.Fatalf("decoded state re-encodes differently")
		}
	})
}
