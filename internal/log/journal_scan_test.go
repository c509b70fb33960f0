package log

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/sluicelog/sluice/internal/vfs"
)

// The chunked scan (journal_scan.go) replaced a scan of the whole file
// read at once; these tests hold it to that scan, kept here as it was,
// on valid, torn and corrupt files.

// scanJournalWhole is the scan of a whole file that scanJournalFile
// replaced (journal.go before the chunked reads).
func scanJournalWhole(buf []byte, gen uint64, fn func(journalEntry) error) (int64, error) {
	off := int64(journalHeaderBytes)
	for off <= int64(len(buf)) {
		e, n, ok := decodeJournalRecord(buf[off:], gen)
		if !ok {
			break
		}
		if fn != nil {
			if err := fn(e); err != nil {
				return off, err
			}
		}
		off += n
	}
	return off, nil
}

// scannedEntry is a journalEntry with its payload copied out of the
// scan's buffer.
type scannedEntry struct {
	kind    byte
	name    string
	offset  int64
	payload string
}

func collectScanned(out *[]scannedEntry) func(journalEntry) error {
	return func(e journalEntry) error {
		*out = append(*out, scannedEntry{e.kind, e.name, e.offset, string(e.payload)})
		return nil
	}
}

// requireScansAgree scans data, as a journal file, both ways.
func requireScansAgree(t *testing.T, data []byte, gen uint64, what string) int {
	t.Helper()
	mem := vfs.NewMem()
	f, err := mem.Create("/0.wal")
	noErr(t, err)
	if len(data) > 0 {
		_, err = f.WriteAt(data, 0)
		noErr(t, err)
	}
	var want, got []scannedEntry
	wantEnd, _ := scanJournalWhole(data, gen, collectScanned(&want))
	gotEnd, err := scanJournalFile(f, gen, collectScanned(&got))
	noErr(t, err)
	require(t, gotEnd == wantEnd, "%s: the chunked scan ends at %d, the whole-file scan at %d (file %d bytes)", what, gotEnd, wantEnd, len(data))
	require(t, len(got) == len(want), "%s: the chunked scan found %d records, the whole-file scan %d", what, len(got), len(want))
	for i := range got {
		require(t, got[i] == want[i], "%s: record %d differs (%s at %d)", what, i, got[i].name, got[i].offset)
	}
	noErr(t, f.Close())
	return len(got)
}

// journalFileAround builds a journal file of generation gen whose records
// end exactly at each of ends (when a record fits there), with random
// records between, and a record larger than a read chunk when large.
func journalFileAround(rng *rand.Rand, gen uint64, ends []int64, large bool) ([]byte, []int64) {
	buf := make([]byte, journalHeaderBytes)
	var starts []int64
	add := func(kind byte, name string, payload []byte) {
		rec := encodeJournalRecord(kind, name, rng.Int64N(1<<40), [][]byte{payload}, journalRecordOverhead+len(name)+len(payload))
		sealJournalRecord(rec, gen)
		starts = append(starts, int64(len(buf)))
		buf = append(buf, rec...)
	}
	randomPayload := func(n int) []byte {
		p := make([]byte, n)
		for i := range p {
			p[i] = byte(rng.Uint32())
		}
		return p
	}
	if large {
		add(journalAppend, "big-0", randomPayload(journalReadChunk+rng.IntN(64<<10)))
	}
	for _, end := range ends {
		for {
			name := fmt.Sprintf("orders-%d", rng.IntN(100))
			left := end - int64(len(buf)) - int64(journalRecordOverhead+len(name))
			if left < 0 {
				break
			}
			if left <= journalMaxRoundBytes {
				add(journalAppend, name, randomPayload(int(left)))
				break
			}
			if rng.IntN(8) == 0 {
				add(journalFence, name, nil)
				continue
			}
			add(journalAppend, name, randomPayload(rng.IntN(journalMaxRoundBytes)))
		}
	}
	return buf, starts
}

// TestJournalScanMatchesWholeFile: on files whose records end right
// around the read chunk's edges (a length field split by it, a record
// ending on it), with a record larger than a chunk, then torn, cut short,
// flipped, given a length past the file, a zero tail, or another
// generation's record, the chunked scan finds what the whole-file scan
// found and ends where it ended.
func TestJournalScanMatchesWholeFile(t *testing.T) {
	const gen = 7
	for seed := range uint64(24) {
		rng := rand.New(rand.NewPCG(seed, 3))
		// The first read covers a chunk from the header on; the second
		// starts at the record the first did not hold whole.
		ends := []int64{journalHeaderBytes + journalReadChunk + rng.Int64N(13) - 6, 2*journalReadChunk + rng.Int64N(64<<10)}
		data, starts := journalFileAround(rng, gen, ends, seed%3 == 0)
		what := fmt.Sprintf("seed %d", seed)
		require(t, requireScansAgree(t, data, gen, what+", whole") == len(starts), "%s: a valid record was not found", what)
		for k := range 6 {
			bad := slices.Clone(data)
			at := starts[rng.IntN(len(starts))]
			switch k {
			case 0: // torn: the file ends inside a record
				bad = bad[:at+rng.Int64N(journalRecordOverhead+8)]
			case 1: // a flipped byte
				bad[at+rng.Int64N(int64(len(bad))-at)] ^= 1 << rng.IntN(8)
			case 2: // a length past the end of the file
				copy(bad[at:], []byte{0x7f, 0xff, 0xff, 0xf0})
			case 3: // a length just past the end of the file
				binary.BigEndian.PutUint32(bad[at:], uint32(int64(len(bad))-at-4+1))
			case 4: // a zero tail, as preallocation leaves
				bad = append(bad, make([]byte, 1+rng.IntN(journalReadChunk))...)
			case 5: // a record of an older generation
				sealJournalRecord(bad[at:at+4+int64(binary.BigEndian.Uint32(bad[at:]))], gen-1)
			}
			requireScansAgree(t, bad, gen, fmt.Sprintf("%s, corruption %d at %d", what, k, at))
		}
	}
}

// TestJournalScanShortFiles: files shorter than a header, than a length
// field past it, or holding a record cut anywhere.
func TestJournalScanShortFiles(t *testing.T) {
	const gen = 3
	rng := rand.New(rand.NewPCG(1, 2))
	data, _ := journalFileAround(rng, gen, []int64{300}, false)
	for n := range len(data) + 1 {
		requireScansAgree(t, data[:n], gen, fmt.Sprintf("a file of %d bytes", n))
	}
	requireScansAgree(t, bytes.Repeat([]byte{0xff}, 40), gen, "a file of ones")
}

// FuzzJournalScan: any bytes scan the same both ways.
func FuzzJournalScan(f *testing.F) {
	rng := rand.New(rand.NewPCG(5, 6))
	data, _ := journalFileAround(rng, 9, []int64{400}, false)
	f.Add(data, uint64(9))
	f.Add([]byte{}, uint64(1))
	f.Add(make([]byte, 40), uint64(0))
	f.Fuzz(func(t *testing.T, data []byte, gen uint64) {
		requireScansAgree(t, data, gen, "fuzzed")
	})
}
