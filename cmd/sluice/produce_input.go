package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicelog/sluice/internal/vfs"
)

// This file holds produce's ways to read records other than one per line:
// a custom delimiter (-D), an input template (--format) and whole files
// (--value-file), and the parsing of their flags.

// parseDelimiter reads a -D separator written with kcat's escapes: \n \t
// \r \\ \0 and \xHH. An unknown escape or an empty result is an error, so
// a mistyped separator does not silently become a different one.
func parseDelimiter(flag, s string) ([]byte, error) {
	var out []byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			out = append(out, c)
			continue
		}
		if i+1 == len(s) {
			return nil, usageErrorf("%s %q ends in a lone backslash; write \\\\ for one", flag, s)
		}
		i++
		switch s[i] {
		case 'n':
			out = append(out, '\n')
		case 't':
			out = append(out, '\t')
		case 'r':
			out = append(out, '\r')
		case '\\':
			out = append(out, '\\')
		case '0':
			out = append(out, 0)
		case 'x':
			if i+3 > len(s) {
				return nil, usageErrorf(`%s %q: \x wants two hex digits`, flag, s)
			}
			b, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
			if err != nil {
				return nil, usageErrorf(`%s %q: \x wants two hex digits`, flag, s)
			}
			out = append(out, byte(b))
			i += 2
		default:
			return nil, usageErrorf(`%s %q: unknown escape \%c (want \n \t \r \\ \0 or \xHH)`, flag, s, s[i])
		}
	}
	if len(out) == 0 {
		return nil, usageErrorf("%s is empty", flag)
	}
	return out, nil
}

// parseRecordTimestamp reads a record timestamp: milliseconds since the epoch or
// an RFC 3339 time (fractions allowed).
func parseRecordTimestamp(s string) (time.Time, error) {
	// Negative timestamps are refused: Kafka reserves -1 for "no
	// timestamp", and a time before 1970 is likelier a typo than meant.
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		if ms < 0 {
			return time.Time{}, fmt.Errorf("timestamp %q: want milliseconds since the epoch (0 or more) or an RFC 3339 time", s)
		}
		return time.UnixMilli(ms), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("timestamp %q: want milliseconds since the epoch or an RFC 3339 time such as 2024-05-01T12:00:00Z", s)
	}
	if t.UnixMilli() < 0 {
		return time.Time{}, fmt.Errorf("timestamp %q is before 1970", s)
	}
	return t, nil
}

// inputTemplate is a parsed --format: an optional literal every record
// starts with, then fields, each a verb and the literal that ends it.
type inputTemplate struct {
	prefix []byte
	fields []templateField
	hasKey bool
	hasTS  bool
}

// templateField is one verb ('k', 'v', 'H' or 'T') and the bytes that end
// it in the input.
type templateField struct {
	verb byte
	end  []byte
}

// inputTemplateVerbs names the verbs for errors and help.
const inputTemplateVerbs = "%k key, %v value, %H one header NAME=VALUE, %T timestamp (ms or RFC 3339), %% a percent sign"

// parseInputTemplate parses --format. Each verb must be followed by a
// literal, which ends the field in the input (two verbs in a row could be
// split anywhere), and the template must end in a literal, the record's
// terminator. Escapes are -D's.
func parseInputTemplate(s string) (*inputTemplate, error) {
	bad := func(format string, args ...any) error {
		return usageErrorf("--format %q: "+format, append([]any{s}, args...)...)
	}
	t := &inputTemplate{}
	var lit strings.Builder
	var verb byte // the verb waiting for its ending literal
	seen := map[byte]bool{}
	endLiteral := func() error {
		if lit.Len() == 0 {
			return nil
		}
		b, err := parseDelimiter("--format", lit.String())
		if err != nil {
			return err
		}
		lit.Reset()
		if verb == 0 {
			t.prefix = b
		} else {
			t.fields = append(t.fields, templateField{verb: verb, end: b})
			verb = 0
		}
		return nil
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		// An escape is kept whole for parseDelimiter, so that "\%" is a
		// backslash then a verb, never an escaped percent sign.
		case c == '\\' && i+1 < len(s):
			lit.WriteByte(c)
			lit.WriteByte(s[i+1])
			i++
		case c == '%' && i+1 < len(s) && s[i+1] == '%':
			lit.WriteByte('%')
			i++
		case c == '%':
			if i+1 == len(s) {
				return nil, bad("ends in a lone %%; write %%%% for a percent sign")
			}
			if err := endLiteral(); err != nil {
				return nil, err
			}
			v := s[i+1]
			i++
			if err := checkTemplateVerb(v, verb, seen); err != nil {
				return nil, bad("%s", err)
			}
			seen[v] = true
			verb = v
		default:
			lit.WriteByte(c)
		}
	}
	if err := endLiteral(); err != nil {
		return nil, err
	}
	switch {
	case verb != 0:
		return nil, bad(`ends in %%%c: end it with the record separator, e.g. '%%k %%v\n'`, verb)
	case !seen['k'] && !seen['v']:
		return nil, bad("has neither %%k nor %%v (want %s)", inputTemplateVerbs)
	}
	t.hasKey, t.hasTS = seen['k'], seen['T']
	return t, nil
}

// checkTemplateVerb checks verb v of --format, which follows the verb
// prev (0: a literal came between them).
func checkTemplateVerb(v, prev byte, seen map[byte]bool) error {
	switch v {
	case 'k', 'v', 'T':
		if seen[v] {
			return fmt.Errorf("%%%c appears twice", v)
		}
	// %H may repeat: each occurrence is one more header, as in rpk -f.
	case 'H':
	default:
		return fmt.Errorf("unknown verb %%%c (want %s)", v, inputTemplateVerbs)
	}
	if prev != 0 {
		return fmt.Errorf("%%%c follows %%%c with nothing between: put a separator between them", v, prev)
	}
	return nil
}

// errFieldTooLong is readField's error for a field over the limit.
var errFieldTooLong = errors.New("field too long")

// readField reads up to and past end, returning what came before it. At
// EOF it returns what was read and io.EOF. Any byte may appear in a field:
// only end ends it.
func readField(r *bufio.Reader, end []byte, limit int) ([]byte, error) {
	// ReadSlice finds the terminator's last byte quickly; the suffix test
	// then checks the whole terminator, so a multi-byte one that only
	// partly matches keeps the loop going.
	last := end[len(end)-1]
	var buf []byte
	for {
		chunk, err := r.ReadSlice(last)
		buf = append(buf, chunk...)
		if err == nil && bytes.HasSuffix(buf, end) {
			return buf[:len(buf)-len(end)], nil
		}
		// Bounded by the topic's limit: a template whose terminator never
		// appears must not read a whole piped file into memory.
		if len(buf) > limit+len(end) {
			return nil, errFieldTooLong
		}
		switch {
		case err == nil, errors.Is(err, bufio.ErrBufferFull):
		case errors.Is(err, io.EOF):
			return buf, io.EOF
		default:
			return buf, err
		}
	}
}

// readTemplateRecords reads records from in by the template and sends
// each; it returns nil at the end of the input.
func readTemplateRecords(in io.Reader, p *producePlan, limit int, send func(*kgo.Record) bool) error {
	// 64 KiB reads amortize the syscalls; fields longer than the buffer
	// are assembled by readField, so it does not limit record size.
	r := bufio.NewReaderSize(in, 64<<10)
	t := p.template
	for n := 1; ; n++ {
		if _, err := r.Peek(1); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return err
		}
		rec, err := t.readRecord(r, p, limit)
		if err != nil {
			return fmt.Errorf("record %d: %w", n, err)
		}
		if !send(rec) {
			return nil
		}
	}
}

// readRecord reads one record by the template. The last field may end at
// the end of the input instead of at the terminator, as a last line
// without a newline does.
func (t *inputTemplate) readRecord(r *bufio.Reader, p *producePlan, limit int) (*kgo.Record, error) {
	if len(t.prefix) > 0 {
		got := make([]byte, len(t.prefix))
		if n, _ := io.ReadFull(r, got); n < len(got) || !bytes.Equal(got, t.prefix) {
			return nil, fmt.Errorf("want the record to start with %q, got %q", t.prefix, got[:n])
		}
	}
	var key, value []byte
	var headers []kgo.RecordHeader
	var ts time.Time
	for i, f := range t.fields {
		field, err := readField(r, f.end, limit)
		switch {
		case errors.Is(err, errFieldTooLong):
			return nil, fmt.Errorf("%%%c is longer than the topic's max.message.bytes (%d bytes)", f.verb, limit)
		case errors.Is(err, io.EOF) && i == len(t.fields)-1:
		case errors.Is(err, io.EOF):
			return nil, fmt.Errorf("input ends inside the record: %%%c has no %q after it", f.verb, f.end)
		case err != nil:
			return nil, err
		}
		// The field may alias the reader's buffer, which the next read
		// overwrites while the record is still queued in the client.
		field = bytes.Clone(field)
		switch f.verb {
		case 'k':
			key = field
		case 'v':
			value = field
		case 'H':
			name, val, ok := bytes.Cut(field, []byte("="))
			if !ok || len(name) == 0 {
				return nil, fmt.Errorf("%%H %q: want NAME=VALUE", field)
			}
			headers = append(headers, kgo.RecordHeader{Key: string(name), Value: val})
		case 'T':
			if ts, err = parseRecordTimestamp(string(field)); err != nil {
				return nil, fmt.Errorf("%%T: %w", err)
			}
		}
	}
	// A template without %v writes empty values, not null ones: null is a
	// tombstone, which only -Z should produce.
	if value == nil {
		value = []byte{}
	}
	rec := p.record(value)
	if t.hasKey {
		rec.Key = key
		if key == nil {
			rec.Key = []byte{}
		}
	}
	// A fresh slice: p.headers is shared by every record, and appending
	// to it in place could let records overwrite each other's headers.
	if len(headers) > 0 {
		rec.Headers = append(append([]kgo.RecordHeader(nil), p.headers...), headers...)
	}
	if t.hasTS {
		rec.Timestamp = ts
	}
	p.nullEmpty(rec)
	return rec, nil
}

// checkValueFiles makes sure every --value-file can be read before
// connecting, so a typo fails before any record is written.
func checkValueFiles(paths []string) error {
	for _, path := range paths {
		info, err := vfs.OS().Stat(path)
		if err != nil {
			return fmt.Errorf("--value-file: %w", err)
		}
		if info.IsDir() {
			return fmt.Errorf("--value-file %s is a directory", path)
		}
	}
	return nil
}

// readValueFiles sends one record per --value-file, its value the file's
// bytes exactly.
func readValueFiles(paths []string, p *producePlan, limit int, send func(*kgo.Record) bool) error {
	for _, path := range paths {
		// ReadFile stops at the limit, so a file too large for the topic
		// is refused without being read into memory first.
		b, err := vfs.ReadFile(vfs.OS(), path, int64(limit))
		if errors.Is(err, vfs.ErrFileTooLarge) {
			return fmt.Errorf("--value-file %s is longer than the topic's max.message.bytes (%d bytes)", path, limit)
		}
		if err != nil {
			return fmt.Errorf("--value-file: %w", err)
		}
		if !send(p.record(b)) {
			return nil
		}
	}
	return nil
}

// deliveryDeadlines hands out record contexts that end --timeout after the
// record was read, standing in for the client's RecordDeliveryTimeout,
// which measures from the record's Timestamp and so fails any record
// stamped further back than --timeout. Records read within the same
// second share one context, so a large input costs one timer a second,
// not one a record; a record's deadline is thus --timeout less up to a
// second.
type deliveryDeadlines struct {
	timeout time.Duration

	mu      sync.Mutex
	ctx     context.Context
	created time.Time
	cancels []context.CancelFunc
}

func newDeliveryDeadlines(timeout time.Duration) *deliveryDeadlines {
	return &deliveryDeadlines{timeout: timeout}
}

// get returns the context for a record read now. Its deadline counts from
// the read (up to a second before it), as RecordDeliveryTimeout's would
// for a record stamped now.
func (d *deliveryDeadlines) get() context.Context {
	d.mu.Lock()
	defer d.mu.Unlock()
	if now := time.Now(); d.ctx == nil || now.Sub(d.created) >= time.Second {
		ctx, cancel := context.WithTimeout(context.Background(), d.timeout)
		d.ctx, d.created = ctx, now
		d.cancels = append(d.cancels, cancel)
	}
	return d.ctx
}

// stop releases the timers once every record is answered or given up on.
func (d *deliveryDeadlines) stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, cancel := range d.cancels {
		cancel()
	}
	d.cancels = nil
}
