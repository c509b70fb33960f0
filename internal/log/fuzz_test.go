package log

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/sluicelog/sluice/internal/clock"
	"github.com/sluicelog/sluice/internal/record"
	"github.com/sluicelog/sluice/internal/vfs"
)

// FuzzLogRecovery damages the tail of a closed log's active segment the way
// a crash or a bad disk could (arbitrary bytes appended, bytes overwritten
// near the end), then reopens it. Recovery must never panic or fail on bad
// data, never return a batch whose CRC does not check, keep offsets
// increasing, keep every batch that lies wholly before the damage exactly as
// it was, and leave a log that takes appends at its end and reopens the same.
//
//	go test -run='^$' -fuzz=FuzzLogRecovery -fuzztime=60s ./internal/log/
func FuzzLogRecovery(f *testing.F) {
	fx := newRecoveryFixture(f)
	for _, s := range fx.seeds() {
		f.Add(s.tail, s.back, s.overwrite, s.useRecoveryPoint)
	}
	f.Fuzz(func(t *testing.T, tail []byte, back uint16, overwrite []byte, useRecoveryPoint bool) {
		// Bound the work per input; longer inputs find nothing more.
		tail = tail[:min(len(tail), 1<<16)]
		overwrite = overwrite[:min(len(overwrite), 1<<12)]
		fx.check(t, tail, back, overwrite, useRecoveryPoint)
	})
}

// recoveryFixture is a closed, fully synced log of a few segments.
type recoveryFixture struct {
	mem        *vfs.MemFS
	cfg        Config
	clock      *clock.Manual
	dir        string
	activeBase int64
	activePath string
	active     []byte // the active segment's file
	// batches of the whole log in offset order, with where they lie in the
	// active segment (position -1: in a sealed segment).
	batches   [][]byte
	positions []int
}

func newRecoveryFixture(tb testing.TB) *recoveryFixture {
	fx := &recoveryFixture{
		mem: vfs.NewMem(), cfg: smallConfig(), dir: "/data/orders-0",
		clock: clock.NewManual(time.UnixMilli(1_700_000_000_000)),
	}
	l, err := Open(fx.mem, fx.dir, Options{Config: fx.cfg, Clock: fx.clock, Logger: quietLogger})
	noErr(tb, err)
	for i := 0; i < 14; i++ {
		_, err := l.Append(testBatch(tb, "fuzz", 1+i%3, 180, 1_700_000_000_000+int64(i)), AppendOptions{LeaderEpoch: -1})
		noErr(tb, err)
	}
	require(tb, l.NumSegments() > 1, "the fixture should have sealed segments")
	fx.activeBase = l.active().baseOffset
	all := readAll(tb, l, 0)
	noErr(tb, l.Close())
	fx.activePath = fx.dir + "/" + segmentFileName(fx.activeBase, logSuffix)
	fx.active, err = readWholeFile(fx.mem, fx.activePath)
	noErr(tb, err)
	pos := 0
	for rest := all; len(rest) > 0; {
		batch, next, h, err := record.NextBatch(rest)
		noErr(tb, err)
		fx.batches = append(fx.batches, batch)
		if h.BaseOffset < fx.activeBase {
			fx.positions = append(fx.positions, -1)
		} else {
			fx.positions = append(fx.positions, pos)
			pos += len(batch)
		}
		rest = next
	}
	require(tb, pos == len(fx.active), "active segment holds %d bytes of batches, file has %d", pos, len(fx.active))
	return fx
}

type recoverySeed struct {
	tail             []byte
	back             uint16
	overwrite        []byte
	useRecoveryPoint bool
}

// seeds are the interesting damages: nothing, a torn header, a huge length,
// valid batches with wrong offsets (below the end, far above it, at the top
// of the offset space), a duplicate of the last batch, zeros (preallocated
// blocks), a flipped byte inside the last batch, a rewritten base offset.
func (fx *recoveryFixture) seeds() []recoverySeed {
	last := fx.batches[len(fx.batches)-1]
	h, _ := record.ParseHeader(last)
	withBase := func(offset int64) []byte {
		b := append([]byte(nil), last...)
		record.SetBaseOffset(b, offset)
		return b
	}
	huge := withBase(h.NextOffset())[:record.HeaderSize]
	binary.BigEndian.PutUint32(huge[8:], math.MaxInt32-12)
	wide := withBase(math.MaxInt64 - 1) // bad CRC: an offset range past int64
	binary.BigEndian.PutUint32(wide[23:], 1000)
	lastLen := uint16(len(last))
	return []recoverySeed{
		{},
		{tail: withBase(h.NextOffset())},      // a valid next batch: kept
		{tail: withBase(h.NextOffset())[:30]}, // torn inside the header
		{tail: huge},
		{tail: withBase(5)},
		{tail: withBase(h.NextOffset() + 1000)},
		{tail: withBase(math.MaxInt64 - 1)},
		{tail: wide},
		{tail: last},
		{tail: make([]byte, 4096)},
		{back: lastLen - 40, overwrite: []byte{0xff}},
		{back: lastLen, overwrite: binary.BigEndian.AppendUint64(nil, uint64(h.BaseOffset+7)), useRecoveryPoint: true},
		{back: lastLen + 3, overwrite: make([]byte, 64), tail: last},
	}
}

// check damages a copy of the fixture and verifies what recovery makes of it.
func (fx *recoveryFixture) check(t *testing.T, tail []byte, back uint16, overwrite []byte, useRecoveryPoint bool) {
	mem := fx.mem.CrashClone(rand.New(rand.NewPCG(1, 2))) // all synced: an exact copy
	data := append(append([]byte(nil), fx.active...), tail...)
	damagedFrom := len(fx.active) // first byte of the original that may have changed
	if len(overwrite) > 0 {
		damagedFrom = max(0, len(fx.active)-int(back))
		if end := damagedFrom + len(overwrite); end > len(data) {
			data = append(data, make([]byte, end-len(data))...)
		}
		copy(data[damagedFrom:], overwrite)
	}
	f, err := mem.Create(fx.activePath)
	noErr(t, err)
	_, err = f.WriteAt(data, 0)
	noErr(t, err)
	noErr(t, f.Sync())
	noErr(t, f.Close())

	// What must survive: sealed segments, and active batches wholly before
	// the damage, which are also what a recovery point may vouch for.
	var intact []byte
	var intactEnd int64
	for i, b := range fx.batches {
		if p := fx.positions[i]; p >= 0 && p+len(b) > damagedFrom {
			break
		}
		intact = append(intact, b...)
		h, _ := record.ParseHeader(b)
		intactEnd = h.NextOffset()
	}
	opts := Options{Config: fx.cfg, Clock: fx.clock, Logger: quietLogger}
	if useRecoveryPoint {
		opts.RecoveryPoint = intactEnd
	}
	l, err := Open(mem, fx.dir, opts)
	if err != nil {
		t.Fatalf("Open failed on damaged data (it must truncate, not fail): %v", err)
	}
	got := readAll(t, l, 0)
	require(t, bytes.HasPrefix(got, intact), "recovery lost or changed batches before the damage: got %d bytes, %d intact", len(got), len(intact))
	next := int64(0)
	for rest := got; len(rest) > 0; {
		batch, after, h, err := record.NextBatch(rest)
		noErr(t, err)
		_, err = record.ValidateBatch(batch)
		require(t, err == nil, "recovery kept an invalid batch at offset %d: %v", h.BaseOffset, err)
		require(t, h.BaseOffset >= next, "batch at %d after offset %d", h.BaseOffset, next)
		next, rest = h.NextOffset(), after
	}
	require(t, l.LogEndOffset() == next, "log end offset %d, batches end at %d", l.LogEndOffset(), next)
	_, _, err = l.OffsetForTimestamp(0)
	noErr(t, err)
	_, _, err = l.MaxTimestamp()
	noErr(t, err)

	b := testBatch(t, "after", 2, 10, 1_700_000_000_000)
	info, err := l.Append(b, AppendOptions{LeaderEpoch: -1})
	noErr(t, err)
	require(t, info.FirstOffset == next, "append after recovery got offset %d, log end was %d", info.FirstOffset, next)
	want := append(got, b...)
	require(t, bytes.Equal(readAll(t, l, 0), want), "append after recovery does not read back")
	noErr(t, l.Close())

	// Recovery is done: reopening, from scratch or as a clean shutdown,
	// finds the same log.
	for _, reopen := range []Options{{}, {RecoveryPoint: info.LastOffset + 1, CleanShutdown: true}} {
		reopen.Config, reopen.Clock, reopen.Logger = fx.cfg, fx.clock, quietLogger
		l, err := Open(mem, fx.dir, reopen)
		noErr(t, err)
		require(t, bytes.Equal(readAll(t, l, 0), want), "reopening a recovered log (%+v) changed it", reopen)
		noErr(t, l.Close())
	}
}
