package raft

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"sync"
	"testing"
	"time"
)

// appliedEntry is one entry a listMachine applied.
type appliedEntry struct {
	index uint64
	data  string
}

// listMachine is the test state machine: the list of entries applied, in
// order, which snapshots as bytes. It fails the test if entries arrive out
// of order.
type listMachine struct {
	mu       sync.Mutex
	entries  []appliedEntry
	applied  uint64 // last index applied or restored
	restores []uint64
	err      error // first ordering violation
}

func (m *listMachine) Apply(index uint64, data []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if index <= m.applied && m.err == nil {
		m.err = fmt.Errorf("apply index %d after %d", index, m.applied)
	}
	m.applied = index
	m.entries = append(m.entries, appliedEntry{index, string(data)})
	return nil
}

func (m *listMachine) Snapshot() ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var b []byte
	for _, e := range m.entries {
		b = binary.BigEndian.AppendUint64(b, e.index)
		b = binary.BigEndian.AppendUint32(b, uint32(len(e.data)))
		b = append(b, e.data...)
	}
	return b, nil
}

func (m *listMachine) Restore(index uint64, data []byte) error {
	var entries []appliedEntry
	for len(data) > 0 {
		if len(data) < 12 || uint32(len(data)-12) < binary.BigEndian.Uint32(data[8:]) {
			return errors.New("listMachine: bad snapshot")
		}
		n := binary.BigEndian.Uint32(data[8:])
		entries = append(entries, appliedEntry{binary.BigEndian.Uint64(data), string(data[12 : 12+n])})
		data = data[12+n:]
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.entries, m.applied = entries, index
	m.restores = append(m.restores, index)
	return nil
}

func (m *listMachine) list() []appliedEntry {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.entries)
}

func (m *listMachine) check(t testing.TB) {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		t.Fatal(m.err)
	}
}

func (m *listMachine) restoredFrom() []uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.restores)
}

// eventually polls cond until it holds or the timeout passes.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func require(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// testLogger discards logs unless SLUICE_TEST_LOGS is set.
func testLogger() *slog.Logger {
	if os.Getenv("SLUICE_TEST_LOGS") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}
