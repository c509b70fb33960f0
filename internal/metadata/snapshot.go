package metadata

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// Snapshot format. A snapshot is what a new or lagging member loads
// instead of the log before it, so it is on disk and on the wire and MUST
// NOT CHANGE (bump snapshotVersion, and keep reading the old one, instead):
//
//	magic     4 bytes  "SLMS"
//	version   uvarint  snapshotVersion
//	offset    varint   (zig-zag) the image's offset, -1 for the empty image
//	count     uvarint  number of records
//	records   count × { uvarint length | record (AppendRecord) }
//	crc       4 bytes  CRC-32C (Castagnoli), big-endian, of every byte before it
//
// The records are Image.Records(): replayed into an empty image and
// applied at the offset, they rebuild the image.
const (
	snapshotMagic   = "SLMS"
	snapshotVersion = 0
	snapshotCRCLen  = 4
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// AppendSnapshot appends a snapshot of img to dst.
func AppendSnapshot(dst []byte, img *Image) []byte {
	start := len(dst)
	records := img.Records()
	dst = append(dst, snapshotMagic...)
	dst = binary.AppendUvarint(dst, snapshotVersion)
	dst = binary.AppendVarint(dst, img.Offset())
	dst = AppendRecords(dst, records)
	return binary.BigEndian.AppendUint32(dst, crc32.Checksum(dst[start:], castagnoli))
}

// DecodeSnapshot rebuilds the image a snapshot holds. It checks the CRC
// before anything else, so a torn or corrupt snapshot is refused whole.
func DecodeSnapshot(b []byte) (*Image, error) {
	if len(b) < len(snapshotMagic)+snapshotCRCLen || string(b[:len(snapshotMagic)]) != snapshotMagic {
		return nil, fmt.Errorf("snapshot header: %w", ErrCorrupt)
	}
	body := b[:len(b)-snapshotCRCLen]
	if want, got := binary.BigEndian.Uint32(b[len(body):]), crc32.Checksum(body, castagnoli); want != got {
		return nil, fmt.Errorf("snapshot crc %08x, computed %08x: %w", want, got, ErrCorrupt)
	}
	p := body[len(snapshotMagic):]
	version, n := binary.Uvarint(p)
	if n <= 0 {
		return nil, fmt.Errorf("snapshot version: %w", ErrCorrupt)
	}
	if version > snapshotVersion {
		return nil, fmt.Errorf("snapshot version %d (know up to %d): %w", version, snapshotVersion, ErrUnsupportedVersion)
	}
	p = p[n:]
	offset, n := binary.Varint(p)
	if n <= 0 {
		return nil, fmt.Errorf("snapshot offset: %w", ErrCorrupt)
	}
	records, err := DecodeRecords(p[n:])
	if err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	delta := NewDelta(EmptyImage())
	for i, r := range records {
		if err := delta.Replay(r); err != nil {
			return nil, fmt.Errorf("snapshot record %d: %w", i, err)
		}
	}
	return delta.Apply(offset), nil
}

// Record list format (snapshots, and the controller's Raft entries: one
// decision's records), which must not change:
//
//	uvarint  count of records
//	count ×  { uvarint length, record (AppendRecord encoding) }

// AppendRecords appends a list of records to dst.
func AppendRecords(dst []byte, records []Record) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(records)))
	var scratch []byte
	for _, r := range records {
		scratch = AppendRecord(scratch[:0], r)
		dst = binary.AppendUvarint(dst, uint64(len(scratch)))
		dst = append(dst, scratch...)
	}
	return dst
}

// DecodeRecords decodes a list of records that is exactly b.
func DecodeRecords(b []byte) ([]Record, error) {
	count, n := binary.Uvarint(b)
	// A record takes at least three bytes: its length, type and version.
	if n <= 0 || count > uint64(len(b)-n)/3 {
		return nil, fmt.Errorf("record count: %w", ErrCorrupt)
	}
	p := b[n:]
	records := make([]Record, 0, count)
	for i := uint64(0); i < count; i++ {
		length, n := binary.Uvarint(p)
		if n <= 0 || length > uint64(len(p)-n) {
			return nil, fmt.Errorf("record %d length: %w", i, ErrCorrupt)
		}
		r, err := DecodeRecord(p[n : n+int(length)])
		if err != nil {
			return nil, fmt.Errorf("record %d: %w", i, err)
		}
		records = append(records, r)
		p = p[n+int(length):]
	}
	if len(p) != 0 {
		return nil, fmt.Errorf("%d bytes after %d records: %w", len(p), count, ErrCorrupt)
	}
	return records, nil
}
