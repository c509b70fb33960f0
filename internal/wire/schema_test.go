package wire

import (
	"errors"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// coveredVersions is what the check must cover: the requests Sluice serves
// now or in the next issue, at these versions.
var coveredVersions = []struct{ key, min, max int16 }{
	{0, 0, 12}, {1, 4, 12}, {2, 0, 8}, {3, 0, 12}, {8, 0, 9}, {9, 0, 9},
	{10, 0, 6}, {11, 0, 9}, {12, 0, 4}, {13, 0, 5}, {14, 0, 5}, {15, 0, 5},
	{16, 0, 5}, {18, 0, 4}, {19, 0, 7}, {20, 0, 6}, {21, 0, 2}, {22, 0, 5},
	{23, 0, 4}, {29, 0, 3}, {30, 0, 3}, {31, 0, 3}, {32, 0, 4}, {33, 0, 2}, {35, 0, 4}, {37, 0, 3}, {42, 0, 2}, {43, 0, 2}, {44, 0, 1},
	{47, 0, 0}, {55, 0, 2}, {60, 0, 1}, {61, 0, 0},
	{17, 0, 1}, {36, 0, 2}, {50, 0, 0}, {51, 0, 0},
	{24, 0, 5}, {25, 0, 4}, {26, 0, 4}, {65, 0, 0}, {66, 0, 1},
	{48, 0, 1}, {49, 0, 1},
	{27, 0, 1}, {28, 0, 3},
	{68, 0, 1}, {69, 0, 1},
	{76, 1, 1}, {77, 1, 1}, {78, 1, 2}, {79, 1, 2},
	{83, 0, 0}, {84, 0, 0}, {85, 0, 0}, {86, 0, 0}, {87, 0, 0},
	{90, 0, 0}, {91, 0, 0}, {92, 0, 0},
}

// forEachCovered calls fn for every covered key and version.
func forEachCovered(t *testing.T, fn func(t *testing.T, key, version int16)) {
	t.Helper()
	for _, c := range coveredVersions {
		for v := c.min; v <= c.max; v++ {
			fn(t, c.key, v)
		}
	}
}

func TestSchemaCoversEveryServedVersion(t *testing.T) {
	covered := map[int16]bool{}
	for _, c := range coveredVersions {
		covered[c.key] = true
		m := schemaFor(c.key, c.min)
		if m == nil {
			t.Fatalf("key %d: no schema", c.key)
		}
		if m.minVersion != c.min || m.maxVersion != c.max {
			t.Errorf("%s: schema covers v%d-%d, want v%d-%d", m.name, m.minVersion, m.maxVersion, c.min, c.max)
		}
		if kmsg.NameForKey(c.key) != m.name && !strings.EqualFold(kmsg.NameForKey(c.key), m.name) {
			t.Errorf("key %d: schema named %s, kmsg calls it %s", c.key, m.name, kmsg.NameForKey(c.key))
		}
		req := kmsg.RequestForKey(c.key)
		if req.MaxVersion() < c.max {
			t.Errorf("%s: kmsg decodes up to v%d, schema claims v%d", m.name, req.MaxVersion(), c.max)
		}
		for v := c.min; v <= c.max; v++ {
			if got, want := v >= m.flexibleFrom, IsFlexible(c.key, v); got != want {
				t.Errorf("%s v%d: schema says flexible=%v, kmsg %v", m.name, v, got, want)
			}
		}
		for _, v := range []int16{c.min - 1, c.max + 1} {
			err := CheckRequest(c.key, v, nil)
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "no schema") {
				t.Errorf("%s v%d: got %v, want a no-schema error", m.name, v, err)
			}
		}
	}
	for key := int16(-1); key < 100; key++ {
		if !covered[key] && schemaFor(key, 0) != nil {
			t.Errorf("key %d has a schema but is not in coveredVersions", key)
		}
		if !covered[key] {
			if err := CheckRequest(key, 0, []byte{0, 0, 0, 0}); !errors.Is(err, ErrMalformed) {
				t.Errorf("key %d: got %v, want ErrMalformed", key, err)
			}
		}
	}
}

// TestSchemaElementSizesFollowKmsg checks that every array has a Go element
// size, so each count is charged to the estimate.
func TestSchemaElementSizesFollowKmsg(t *testing.T) {
	for _, m := range requestSchemas {
		if m == nil {
			continue
		}
		var walk func(path string, fs []field)
		walk = func(path string, fs []field) {
			for i := range fs {
				f := &fs[i]
				if f.kind == kindArray && f.elemSize <= 0 {
					t.Errorf("%s.%s: no element size", path, f.name)
				}
				walk(path+"."+f.name, f.fields)
			}
		}
		walk(m.name, m.fields)
	}
}

// filler fills a kmsg request with values, reflectively, so every schema
// is exercised against kmsg's own encoder.
type filler struct {
	rng *rand.Rand
	// mode: "null" leaves every nullable value null and every array
	// absent, "set" fills every pointer and gives every array two
	// elements, "default" gives every array two elements left at kmsg's
	// defaults (so tagged fields are not sent) and sets nothing else,
	// "random" chooses.
	mode string
	// unknownTags adds unknown tagged fields to structs (flexible versions
	// encode them).
	unknownTags bool
}

var tagsType = reflect.TypeFor[kmsg.Tags]()

func (f *filler) fill(v reflect.Value, depth int) {
	for i := range v.NumField() {
		sf := v.Type().Field(i)
		fv := v.Field(i)
		if depth == 0 && sf.Name == "Version" {
			continue
		}
		if sf.Type == tagsType {
			if f.unknownTags && f.rng.IntN(3) == 0 {
				tags := fv.Addr().Interface().(*kmsg.Tags)
				tags.Set(uint32(1000+f.rng.IntN(50)), f.bytes())
			}
			continue
		}
		f.value(fv, depth)
	}
}

func (f *filler) value(fv reflect.Value, depth int) {
	if f.mode == "default" {
		f.defaults(fv, depth)
		return
	}
	switch fv.Kind() {
	case reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		fv.SetInt(f.rng.Int64())
	case reflect.Float64:
		fv.SetFloat(f.rng.Float64())
	case reflect.Bool:
		fv.SetBool(f.rng.IntN(2) == 0)
	case reflect.String:
		fv.SetString(f.str())
	case reflect.Array: // uuid
		for j := range fv.Len() {
			fv.Index(j).SetUint(uint64(f.rng.IntN(256)))
		}
	case reflect.Struct:
		f.fill(fv, depth+1)
	case reflect.Pointer:
		if f.null() {
			return
		}
		p := reflect.New(fv.Type().Elem())
		f.value(p.Elem(), depth)
		fv.Set(p)
	case reflect.Slice:
		if fv.Type().Elem().Kind() == reflect.Uint8 {
			if !f.null() {
				fv.SetBytes(f.bytes())
			}
			return
		}
		if f.null() {
			return
		}
		n := f.count(depth)
		s := reflect.MakeSlice(fv.Type(), n, n)
		for j := range n {
			f.value(s.Index(j), depth+1)
		}
		fv.Set(s)
	}
}

// defaults gives every array of structs two default elements.
func (f *filler) defaults(fv reflect.Value, depth int) {
	switch {
	case fv.Kind() == reflect.Struct:
		f.fill(fv, depth+1)
	case fv.Kind() == reflect.Slice && fv.Type().Elem().Kind() == reflect.Struct:
		s := reflect.MakeSlice(fv.Type(), 2, 2)
		for j := range 2 {
			s.Index(j).Addr().MethodByName("Default").Call(nil)
			f.fill(s.Index(j), depth+1)
		}
		fv.Set(s)
	}
}

func (f *filler) null() bool {
	switch f.mode {
	case "null":
		return true
	case "set":
		return false
	}
	return f.rng.IntN(4) == 0
}

func (f *filler) count(depth int) int {
	if f.mode != "random" {
		return 2
	}
	if depth <= 1 && f.rng.IntN(20) == 0 {
		return 130 // a two-byte compact length
	}
	return f.rng.IntN(4)
}

func (f *filler) str() string {
	n := f.rng.IntN(12)
	if f.mode == "random" && f.rng.IntN(15) == 0 {
		n = 200 // a two-byte compact length
	}
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('a' + f.rng.IntN(26))
	}
	return string(b)
}

func (f *filler) bytes() []byte {
	n := f.rng.IntN(40)
	if f.mode == "random" && f.rng.IntN(15) == 0 {
		n = 300
	}
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(f.rng.IntN(256))
	}
	return b
}

// buildRequest encodes a kmsg request of key at version filled by f.
func buildRequest(key, version int16, f *filler) []byte {
	req := kmsg.RequestForKey(key)
	f.fill(reflect.ValueOf(req).Elem(), 0)
	req.SetVersion(version)
	return req.AppendTo(nil)
}

// decode decodes body with kmsg as the broker does.
func decode(key, version int16, body []byte) error {
	req := kmsg.RequestForKey(key)
	req.SetVersion(version)
	return req.ReadFrom(body)
}

func TestCheckRequestAcceptsKmsgEncodings(t *testing.T) {
	forEachCovered(t, func(t *testing.T, key, version int16) {
		for _, mode := range []string{"null", "set", "default"} {
			f := &filler{rng: rand.New(rand.NewPCG(uint64(key), uint64(version))), mode: mode}
			body := buildRequest(key, version, f)
			if err := CheckRequest(key, version, body); err != nil {
				t.Errorf("%s v%d (%s): %v", kmsg.NameForKey(key), version, mode, err)
			}
			if err := decode(key, version, body); err != nil {
				t.Errorf("%s v%d (%s): kmsg cannot decode its own encoding: %v", kmsg.NameForKey(key), version, mode, err)
			}
		}
	})
}

func TestCheckRequestAcceptsRandomKmsgEncodings(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	iterations := 40
	if testing.Short() {
		iterations = 5
	}
	forEachCovered(t, func(t *testing.T, key, version int16) {
		for range iterations {
			f := &filler{rng: rng, mode: "random", unknownTags: true}
			body := buildRequest(key, version, f)
			if err := CheckRequest(key, version, body); err != nil {
				t.Fatalf("seed %d: %s v%d: %v (body %x)", seed, kmsg.NameForKey(key), version, err, body)
			}
		}
	})
}
