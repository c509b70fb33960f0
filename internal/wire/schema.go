package wire

import (
	"math"
	"reflect"
)

// The schema DSL: each request is a list of fields, each with the versions
// it exists in, written from Kafka's message definitions
// (clients/src/main/resources/common/message/*Request.json). CheckRequest
// walks a body against it before kmsg decodes anything (check.go).
//
// A field's Go cost is what kmsg allocates when it decodes the field: for an
// array, the element struct's size (taken from the kmsg type itself, so it
// follows the library) times the count; for a string, its bytes; for a
// nullable string, its bytes plus the boxed string header. Bytes and records
// are aliased into the request frame by kmsg and cost nothing.

// kind is a field's wire type.
type kind uint8

const (
	kindInt8 kind = iota + 1
	kindInt16
	kindInt32
	kindInt64
	kindUvarint
	kindVarint
	kindUUID
	kindBool
	kindFloat64
	kindString
	kindBytes
	kindRecords // a record batch set: nullable bytes that kmsg does not decode
	kindArray   // of elem (primitive) or of fields (a struct)
	kindStruct  // an inline struct (only as a tagged field here)
)

// allVersions marks a field's version range or nullability as open-ended.
const (
	allVersions int16 = math.MaxInt16
	noVersion   int16 = -1
)

// Go sizes of what kmsg allocates per primitive array element or string.
const (
	goStringHeader = 16 // a string header: pointer and length
	goPointer      = 8
)

// field is one field of a request or of a struct inside it.
type field struct {
	name string
	kind kind
	// since and until bound the versions the field is on the wire in
	// (inclusive). A tagged field is checked whenever its tag appears, at
	// any flexible version, because kmsg decodes known tags regardless
	// of version.
	since, until int16
	// nullableSince is the first version in which a string, bytes or
	// array may be null (noVersion: never).
	nullableSince int16
	// tag is the tag number of a tagged field, or -1.
	tag int32
	// elem is the element kind of an array of primitives (0 for an
	// array of structs, whose fields are in fields).
	elem   kind
	fields []field
	// elemSize is the Go size of one array element as kmsg decodes it.
	elemSize int64
	// minElemBytes[v] is the fewest bytes one struct element takes on the
	// wire at version v: an array count above remaining/minElemBytes
	// cannot be real.
	minElemBytes []int32
}

// message is the schema of one request key.
type message struct {
	key          int16
	name         string
	minVersion   int16
	maxVersion   int16
	flexibleFrom int16 // first flexible version; allVersions: none
	fields       []field
}

func prim(k kind, name string) field {
	return field{name: name, kind: k, until: allVersions, nullableSince: noVersion, tag: -1}
}

func i8(name string) field      { return prim(kindInt8, name) }
func i16(name string) field     { return prim(kindInt16, name) }
func i32(name string) field     { return prim(kindInt32, name) }
func i64(name string) field     { return prim(kindInt64, name) }
func boolean(name string) field { return prim(kindBool, name) }
func uuid(name string) field    { return prim(kindUUID, name) }
func str(name string) field     { return prim(kindString, name) }
func byts(name string) field    { return prim(kindBytes, name) }

// nstr is a string nullable in every version.
func nstr(name string) field { return str(name).nullable(0) }

// records is a Produce partition's record batches (nullable bytes).
func records(name string) field { return prim(kindRecords, name).nullable(0) }

// array is an array of structs whose Go element type is T.
func array[T any](name string, fields ...field) field {
	f := prim(kindArray, name)
	f.fields = fields
	f.elemSize = int64(reflect.TypeFor[T]().Size())
	return f
}

// primArray is an array of a primitive kind.
func primArray(name string, elem kind) field {
	f := prim(kindArray, name)
	f.elem = elem
	f.elemSize = goSize(elem)
	return f
}

// structField is an inline struct (kmsg embeds it, allocating nothing).
func structField(name string, fields ...field) field {
	f := prim(kindStruct, name)
	f.fields = fields
	return f
}

// versions limits the field to versions since..until.
func (f field) versions(since, until int16) field {
	f.since, f.until = since, until
	return f
}

// from limits the field to versions since and later.
func (f field) from(since int16) field { return f.versions(since, allVersions) }

// nullable makes the field nullable from version since.
func (f field) nullable(since int16) field {
	f.nullableSince = since
	return f
}

// tagged makes f the tagged field number tag.
func tagged(tag int32, f field) field {
	f.tag = tag
	return f
}

func (f *field) inVersion(version int16) bool {
	return f.since <= version && version <= f.until
}

func (f *field) nullableIn(version int16) bool {
	return f.nullableSince != noVersion && version >= f.nullableSince
}

// goSize is the Go size of one primitive array element as kmsg decodes it.
func goSize(k kind) int64 {
	switch k {
	case kindInt8, kindBool:
		return 1
	case kindInt16:
		return 2
	case kindInt32, kindUvarint, kindVarint:
		return 4
	case kindInt64, kindFloat64:
		return 8
	case kindUUID:
		return 16
	case kindString:
		return goStringHeader
	case kindBytes, kindRecords:
		return 24 // a slice header
	}
	return 0
}

// minWireBytes is the fewest bytes a field takes at a version.
// A tagged field may be absent, and a field outside its versions is not
// sent, so both add nothing: the minimum must never overstate, or a real
// request would be refused as malformed.
func minWireBytes(f *field, version int16, flexible bool) int32 {
	if f.tag >= 0 || !f.inVersion(version) {
		return 0
	}
	switch f.kind {
	case kindInt8, kindBool, kindUvarint, kindVarint:
		return 1
	case kindInt16:
		return 2
	case kindInt32:
		return 4
	case kindInt64, kindFloat64:
		return 8
	case kindUUID:
		return 16
	case kindString:
		if flexible {
			return 1
		}
		return 2
	case kindBytes, kindRecords, kindArray:
		if flexible {
			return 1
		}
		return 4
	case kindStruct:
		return minStructBytes(f.fields, version, flexible)
	}
	return 0
}

func minStructBytes(fields []field, version int16, flexible bool) int32 {
	var n int32
	if flexible {
		n = 1 // the tag section's count
	}
	for i := range fields {
		n += minWireBytes(&fields[i], version, flexible)
	}
	return n
}

// prepare fills in minElemBytes for every struct array in m, for each
// version m has. It runs once at package init (indexSchemas), so the check
// of a request only looks the minimum up.
func (m *message) prepare() {
	prepareFields(m.fields, m)
}

func prepareFields(fields []field, m *message) {
	for i := range fields {
		f := &fields[i]
		if f.fields == nil {
			continue
		}
		prepareFields(f.fields, m)
		if f.kind != kindArray {
			continue
		}
		f.minElemBytes = make([]int32, int(m.maxVersion)+1)
		for v := m.minVersion; v <= m.maxVersion; v++ {
			f.minElemBytes[v] = minStructBytes(f.fields, v, v >= m.flexibleFrom)
		}
	}
}
