package main

import (
	"bufio"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"
)

// defaultRecordFormat prints each record's value on its own line, as kcat
// does without -f.
const defaultRecordFormat = "%s\n"

// recordFormatHelp documents the kcat-style verbs for --format.
const recordFormatHelp = `Output template (-f), kcat's verbs plus rpk's %d:
  %s value (also %v)   %S value length (-1 when null)
  %R value length as a 4-byte big-endian integer (kcat's framing for binary)
  %k key     %K key length (-1 when null)     %h headers as k=v,k=v
  %t topic   %p partition   %o offset   %T timestamp (ms since the epoch)
  %d timestamp (ms)   %d{LAYOUT} timestamp in UTC as a Go time layout, as
     rpk writes it, e.g. %d{2006-01-02T15:04:05Z07:00} (or %d{go[LAYOUT]})
  %% a percent sign
  \n newline  \t tab  \r carriage return  \\ backslash  \xHH the byte HH`

// formatVerbs lists the verbs parseRecordFormat takes, for its error.
const formatVerbs = "%s %v %S %R %k %K %h %t %p %o %T %d %d{LAYOUT} %%"

// recordFormat is a parsed --format template: literal runs and verbs in
// order, so formatting a record does no parsing.
type recordFormat struct {
	parts []formatPart
}

// formatPart is a literal (verb 0) or one %-verb; layout is %d{LAYOUT}'s
// Go time layout ("" for %d alone: milliseconds).
type formatPart struct {
	verb    byte
	literal []byte
	layout  string
}

// parseRecordFormat parses a kcat-style template. It is one loop over the
// template's bytes, longer than most functions because escapes and verbs
// are read in place. An unknown %-verb is an error (a typo would otherwise
// print garbage for every record); an unknown backslash escape is kept as
// written, as kcat keeps it.
func parseRecordFormat(template string) (recordFormat, error) {
	var f recordFormat
	var lit []byte
	flush := func() {
		if len(lit) > 0 {
			f.parts = append(f.parts, formatPart{literal: lit})
			lit = nil
		}
	}
	for i := 0; i < len(template); i++ {
		c := template[i]
		switch {
		case c == '\\' && i+1 < len(template):
			var n int
			lit, n = appendEscape(lit, template[i+1:])
			i += n
		case c == '%':
			if i+1 == len(template) {
				return recordFormat{}, fmt.Errorf("format %q ends in a lone %%; write %%%% for a percent sign", template)
			}
			if template[i+1] == '%' {
				lit = append(lit, '%')
				i++
				continue
			}
			part, n, err := parseVerb(template[i+1:])
			if err != nil {
				return recordFormat{}, fmt.Errorf("format %q: %w", template, err)
			}
			flush()
			f.parts = append(f.parts, part)
			i += n
		default:
			lit = append(lit, c)
		}
	}
	flush()
	return f, nil
}

// appendEscape appends the escape that rest (what follows a backslash)
// starts with and returns how many bytes of rest it used.
func appendEscape(dst []byte, rest string) ([]byte, int) {
	switch rest[0] {
	case 'n':
		return append(dst, '\n'), 1
	case 't':
		return append(dst, '\t'), 1
	case 'r':
		return append(dst, '\r'), 1
	case '\\':
		return append(dst, '\\'), 1
	case 'x':
		if len(rest) >= 3 {
			if b, err := strconv.ParseUint(rest[1:3], 16, 8); err == nil {
				return append(dst, byte(b)), 3
			}
		}
	}
	return append(dst, '\\', rest[0]), 1
}

// parseVerb parses the verb that rest (what follows a '%') starts with and
// returns how many bytes of rest it used.
func parseVerb(rest string) (formatPart, int, error) {
	v := rest[0]
	switch v {
	case 's', 'v':
		return formatPart{verb: 'v'}, 1, nil
	case 't', 'p', 'o', 'T', 'k', 'K', 'S', 'R', 'h':
		return formatPart{verb: v}, 1, nil
	case 'd':
		if !strings.HasPrefix(rest, "d{") {
			return formatPart{verb: 'd'}, 1, nil
		}
		end := strings.IndexByte(rest, '}')
		if end < 0 {
			return formatPart{}, 0, fmt.Errorf("%%d{ has no closing }")
		}
		layout := rest[2:end]
		// rpk spells a Go layout %d{go[LAYOUT]}; take that too.
		if inner, ok := strings.CutPrefix(layout, "go["); ok && strings.HasSuffix(inner, "]") {
			layout = strings.TrimSuffix(inner, "]")
		}
		if layout == "" {
			return formatPart{}, 0, fmt.Errorf("%%d{} has an empty layout; write %%d for milliseconds or a Go layout such as %%d{2006-01-02T15:04:05Z07:00}")
		}
		return formatPart{verb: 'd', layout: layout}, end + 1, nil
	}
	return formatPart{}, 0, fmt.Errorf("unknown verb %%%c (want one of %s)", v, formatVerbs)
}

// appendRecord appends r formatted by f to dst. Keys and values are written
// as raw bytes, as kcat writes them; a null key or value prints nothing.
func (f recordFormat) appendRecord(dst []byte, r *kgo.Record) []byte {
	for _, p := range f.parts {
		switch p.verb {
		case 0:
			dst = append(dst, p.literal...)
		case 't':
			dst = append(dst, r.Topic...)
		case 'p':
			dst = strconv.AppendInt(dst, int64(r.Partition), 10)
		case 'o':
			dst = strconv.AppendInt(dst, r.Offset, 10)
		// Kafka timestamps are milliseconds; %T prints them as the
		// broker stores them, so output can be fed back to --timestamp.
		case 'T':
			dst = strconv.AppendInt(dst, r.Timestamp.UnixMilli(), 10)
		case 'd':
			if p.layout == "" {
				dst = strconv.AppendInt(dst, r.Timestamp.UnixMilli(), 10)
			} else {
				// UTC, not local time: output that is the same on every
				// machine can be diffed and compared across regions.
				dst = r.Timestamp.UTC().AppendFormat(dst, p.layout)
			}
		case 'k':
			dst = append(dst, r.Key...)
		case 'v':
			dst = append(dst, r.Value...)
		case 'K':
			dst = strconv.AppendInt(dst, nullableLength(r.Key), 10)
		case 'S':
			dst = strconv.AppendInt(dst, nullableLength(r.Value), 10)
		// kcat's framing for binary values: a reader takes 4 bytes of
		// length, then that many bytes; -1 (0xffffffff) marks null.
		case 'R':
			dst = binary.BigEndian.AppendUint32(dst, uint32(int32(nullableLength(r.Value))))
		case 'h':
			dst = appendHeaders(dst, r.Headers)
		}
	}
	return dst
}

// appendHeaders appends headers as kcat's %h does: k=v,k=v.
func appendHeaders(dst []byte, headers []kgo.RecordHeader) []byte {
	for i, h := range headers {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, h.Key...)
		dst = append(dst, '=')
		dst = append(dst, h.Value...)
	}
	return dst
}

// nullableLength is a key's or value's length as Kafka encodes it: -1 for
// null, so a null and an empty key can be told apart (kcat prints 0 for
// both).
func nullableLength(b []byte) int64 {
	if b == nil {
		return -1
	}
	return int64(len(b))
}

// Binary encodings for --binary, which says how consume --json writes keys,
// values and header values.
const (
	// binaryAuto writes valid UTF-8 as a JSON string and anything else as
	// base64 with a *_encoding field saying so: readable for the common
	// case of text, yet lossless for any bytes.
	binaryAuto = "auto"
	// binaryBase64 writes every key and value as base64, so a script need
	// not look at the *_encoding fields.
	binaryBase64 = "base64"
)

// jsonRecord is one consumed record in consume --json output, one per line.
// key and value are null for a null key or value; key_encoding and
// value_encoding are "base64" when the bytes were base64-encoded (see
// binaryAuto) and absent when the string is the bytes themselves.
type jsonRecord struct {
	Topic         string       `json:"topic"`
	Partition     int32        `json:"partition"`
	Offset        int64        `json:"offset"`
	Timestamp     int64        `json:"timestamp"`
	Key           *string      `json:"key"`
	KeyEncoding   string       `json:"key_encoding,omitempty"`
	Value         *string      `json:"value"`
	ValueEncoding string       `json:"value_encoding,omitempty"`
	Headers       []jsonHeader `json:"headers"`
}

// jsonHeader is one record header; Kafka header keys are always strings.
type jsonHeader struct {
	Key           string  `json:"key"`
	Value         *string `json:"value"`
	ValueEncoding string  `json:"value_encoding,omitempty"`
}

// newJSONRecord converts r for consume --json under the --binary mode.
func newJSONRecord(r *kgo.Record, binary string) jsonRecord {
	out := jsonRecord{
		Topic:     r.Topic,
		Partition: r.Partition,
		Offset:    r.Offset,
		Timestamp: r.Timestamp.UnixMilli(),
		Headers:   make([]jsonHeader, 0, len(r.Headers)),
	}
	out.Key, out.KeyEncoding = encodeBytes(r.Key, binary)
	out.Value, out.ValueEncoding = encodeBytes(r.Value, binary)
	for _, h := range r.Headers {
		jh := jsonHeader{Key: h.Key}
		jh.Value, jh.ValueEncoding = encodeBytes(h.Value, binary)
		out.Headers = append(out.Headers, jh)
	}
	return out
}

// encodeBytes returns b as a JSON string and its encoding ("" for the bytes
// themselves, "base64"); nil stays null.
func encodeBytes(b []byte, binary string) (*string, string) {
	if b == nil {
		return nil, ""
	}
	if binary != binaryBase64 && utf8.Valid(b) {
		s := string(b)
		return &s, ""
	}
	// Standard base64 with padding, what `base64 -d` and most languages'
	// default decoders take.
	s := base64.StdEncoding.EncodeToString(b)
	return &s, binaryBase64
}

// recordPrinter writes consumed records to the command's output, as a
// template or as JSON lines, buffered between flushes so a large fetch is
// not one write per record.
type recordPrinter struct {
	w      *bufio.Writer
	enc    *json.Encoder // nil unless printing JSON
	format recordFormat
	binary string
	line   []byte
}

// newRecordPrinter buffers the output: consume may print millions of
// records, and one write per record would make the terminal, not the
// broker, the bottleneck. pollAndPrint flushes after each poll, so output
// is never held back longer than one fetch.
func newRecordPrinter(w io.Writer, asJSON bool, format recordFormat, binary string) *recordPrinter {
	p := &recordPrinter{w: bufio.NewWriter(w), format: format, binary: binary}
	if asJSON {
		p.enc = json.NewEncoder(p.w)
		// A value like "a<b" should stay readable in a terminal.
		p.enc.SetEscapeHTML(false)
	}
	return p
}

// print writes one record (one line in JSON mode).
func (p *recordPrinter) print(r *kgo.Record) error {
	if p.enc != nil {
		return p.enc.Encode(newJSONRecord(r, p.binary))
	}
	p.line = p.format.appendRecord(p.line[:0], r)
	_, err := p.w.Write(p.line)
	return err
}

// flush writes out what print buffered; call it after each fetch so a
// follower sees records as they arrive.
func (p *recordPrinter) flush() error { return p.w.Flush() }
