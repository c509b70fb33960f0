package metadata

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
)

// Client quota entity types, as Kafka names them in DescribeClientQuotas
// and AlterClientQuotas.
const (
	QuotaEntityUser     = "user"
	QuotaEntityClientID = "client-id"
	QuotaEntityIP       = "ip"
)

// Client quota keys, Kafka's. The byte rates are bytes per second, the
// request percentage is the share of one request-handling thread's time
// per quota window (100 = one whole thread), the mutation rate is
// partitions created or deleted per second, the connection creation rate
// is new connections per second from one IP.
const (
	QuotaProducerByteRate       = "producer_byte_rate"
	QuotaConsumerByteRate       = "consumer_byte_rate"
	QuotaRequestPercentage      = "request_percentage"
	QuotaControllerMutationRate = "controller_mutation_rate"
	QuotaConnectionCreationRate = "connection_creation_rate"
)

// quotaEntityPartBytes is what the decoding budget charges for a decoded
// QuotaEntityPart: two string headers and a bool, rounded up.
const quotaEntityPartBytes = 48

// QuotaEntityPart is one component of a quota entity as a ClientQuota
// record stores it: a type and a name, or that type's default entity
// (Kafka's null name, "<default>" in its tools).
type QuotaEntityPart struct {
	Type    string
	Name    string
	Default bool // the type's default entity; Name is empty
}

// QuotaName is one component of a QuotaEntity: absent (the zero value),
// a name, or the type's default.
type QuotaName struct {
	Set     bool
	Default bool
	Name    string
}

// Named returns the component naming name.
func Named(name string) QuotaName { return QuotaName{Set: true, Name: name} }

// DefaultName is the component naming the type's default entity.
var DefaultName = QuotaName{Set: true, Default: true}

// String is Kafka's spelling: the name, or "<default>".
func (n QuotaName) String() string {
	if n.Default {
		return "<default>"
	}
	return n.Name
}

// QuotaEntity is whom a set of quotas applies to: a user, a client id, a
// (user, client id) pair, or an IP, each named or the default. It is
// comparable, so images key quotas by it.
type QuotaEntity struct {
	User     QuotaName
	ClientID QuotaName
	IP       QuotaName
}

// String names the entity as Kafka's tools do: "user=alice,client-id=<default>".
func (e QuotaEntity) String() string {
	var parts []string
	for _, p := range e.Parts() {
		name := p.Name
		if p.Default {
			name = "<default>"
		}
		parts = append(parts, p.Type+"="+name)
	}
	return strings.Join(parts, ",")
}

// Parts returns the entity's components in a fixed order: user, client
// id, ip.
func (e QuotaEntity) Parts() []QuotaEntityPart {
	var parts []QuotaEntityPart
	for _, c := range []struct {
		typ  string
		name QuotaName
	}{{QuotaEntityUser, e.User}, {QuotaEntityClientID, e.ClientID}, {QuotaEntityIP, e.IP}} {
		if c.name.Set {
			parts = append(parts, QuotaEntityPart{Type: c.typ, Name: c.name.Name, Default: c.name.Default})
		}
	}
	return parts
}

// QuotaEntityFromParts builds and checks an entity, with Kafka's rules: a
// user, a client id, both, or an IP alone; each type at most once; a
// named user or IP is not empty (a client id may be: clients send one).
func QuotaEntityFromParts(parts []QuotaEntityPart) (QuotaEntity, error) {
	var e QuotaEntity
	if len(parts) == 0 {
		return e, fmt.Errorf("quota entity with no components: %w", ErrInvalidQuotaEntity)
	}
	for _, p := range parts {
		var slot *QuotaName
		switch p.Type {
		case QuotaEntityUser:
			slot = &e.User
		case QuotaEntityClientID:
			slot = &e.ClientID
		case QuotaEntityIP:
			slot = &e.IP
		default:
			return e, fmt.Errorf("quota entity type %q (want user, client-id or ip): %w", p.Type, ErrInvalidQuotaEntity)
		}
		if slot.Set {
			return e, fmt.Errorf("quota entity type %q given twice: %w", p.Type, ErrInvalidQuotaEntity)
		}
		if p.Default && p.Name != "" {
			return e, fmt.Errorf("quota entity %s: a default with the name %q: %w", p.Type, p.Name, ErrInvalidQuotaEntity)
		}
		if !p.Default && p.Name == "" && p.Type != QuotaEntityClientID {
			return e, fmt.Errorf("quota entity %s with an empty name: %w", p.Type, ErrInvalidQuotaEntity)
		}
		*slot = QuotaName{Set: true, Default: p.Default, Name: p.Name}
	}
	if e.IP.Set && (e.User.Set || e.ClientID.Set) {
		return e, fmt.Errorf("quota entity %s: an ip cannot be combined with a user or client id: %w", e, ErrInvalidQuotaEntity)
	}
	return e, nil
}

// QuotaKeysFor returns the quota keys an entity may carry: the connection
// creation rate belongs to IPs, every other key to users and client ids.
func QuotaKeysFor(e QuotaEntity) []string {
	if e.IP.Set {
		return []string{QuotaConnectionCreationRate}
	}
	return []string{QuotaProducerByteRate, QuotaConsumerByteRate, QuotaRequestPercentage, QuotaControllerMutationRate}
}

// ClientQuota sets, or with Remove removes, one quota key of an entity
// (Kafka's ClientQuotaRecord).
type ClientQuota struct {
	Entity []QuotaEntityPart
	Key    string
	Value  float64
	Remove bool
}

func (*ClientQuota) Type() RecordType { return TypeClientQuota }

// ClientQuotas returns the quotas set on exactly this entity, nil when
// none. Callers must not modify the map.
func (img *Image) ClientQuotas(e QuotaEntity) map[string]float64 { return img.quotas[e] }

// AllClientQuotas returns every entity's quotas. Callers must not modify
// the maps.
func (img *Image) AllClientQuotas() map[QuotaEntity]map[string]float64 { return img.quotas }

// HasClientQuotas reports whether any quota is set, so that enforcement
// costs nothing on a cluster without quotas.
func (img *Image) HasClientQuotas() bool { return len(img.quotas) > 0 }

// replayClientQuota sets or removes one key. Removing a key that is not
// set is not an error: Kafka's controller emits a removal for it too.
func (d *Delta) replayClientQuota(r *ClientQuota) error {
	e, err := QuotaEntityFromParts(r.Entity)
	if err != nil {
		return fmt.Errorf("client quota %q: %w", r.Key, err)
	}
	if !slices.Contains(QuotaKeysFor(e), r.Key) {
		return fmt.Errorf("client quota %q of %s: not a quota key of that entity: %w", r.Key, e, ErrInvalidRecord)
	}
	if !r.Remove && (math.IsNaN(r.Value) || math.IsInf(r.Value, 0) || r.Value <= 0) {
		return fmt.Errorf("client quota %s=%v of %s: %w", r.Key, r.Value, e, ErrInvalidRecord)
	}
	m, ok := d.quotas[e]
	if !ok {
		m = maps.Clone(d.base.quotas[e])
	}
	if m == nil {
		m = make(map[string]float64)
	}
	if r.Remove {
		delete(m, r.Key)
	} else {
		m[r.Key] = r.Value
	}
	if d.quotas == nil {
		d.quotas = make(map[QuotaEntity]map[string]float64)
	}
	d.quotas[e] = m
	return nil
}

// appendClientQuotaRecords appends a record per quota key, entities in a
// fixed order (by their String), keys sorted.
func (img *Image) appendClientQuotaRecords(records []Record) []Record {
	entities := slices.Collect(maps.Keys(img.quotas))
	slices.SortFunc(entities, func(a, b QuotaEntity) int { return cmp.Compare(a.String(), b.String()) })
	for _, e := range entities {
		quotas := img.quotas[e]
		for _, key := range sortedKeys(quotas) {
			records = append(records, &ClientQuota{Entity: e.Parts(), Key: key, Value: quotas[key]})
		}
	}
	return records
}

// ClientQuota fields: 0 Entity (uvarint count | count × (uvarint length |
// part fields 0 Type, 1 Name, 2 Default)), 1 Key, 2 Value (8 bytes,
// big-endian IEEE 754 bits), 3 Remove.
func appendClientQuota(w *fieldWriter, r *ClientQuota) {
	if len(r.Entity) > 0 {
		payload := binary.AppendUvarint(nil, uint64(len(r.Entity)))
		var scratch []byte
		for _, p := range r.Entity {
			pw := fieldWriter{b: scratch[:0]}
			pw.string(0, p.Type)
			pw.string(1, p.Name)
			pw.bool(2, p.Default)
			scratch = pw.b
			payload = binary.AppendUvarint(payload, uint64(len(scratch)))
			payload = append(payload, scratch...)
		}
		w.bytes(0, payload)
	}
	w.string(1, r.Key)
	if bits := math.Float64bits(r.Value); bits != 0 {
		w.header(2, 8)
		w.b = binary.BigEndian.AppendUint64(w.b, bits)
	}
	w.bool(3, r.Remove)
}

func decodeClientQuota(r *fieldReader) Record {
	rec := &ClientQuota{}
	for r.next() {
		switch r.tag {
		case 0:
			rec.Entity = r.quotaEntityParts()
		case 1:
			rec.Key = r.string()
		case 2:
			if len(r.payload) != 8 {
				r.fail("float field %d of %d bytes", r.tag, len(r.payload))
				continue
			}
			rec.Value = math.Float64frombits(binary.BigEndian.Uint64(r.payload))
		case 3:
			rec.Remove = r.bool()
		}
	}
	return rec
}

// quotaEntityParts reads a count and that many length-prefixed parts,
// each a nested set of tagged fields sharing this reader's budget.
func (r *fieldReader) quotaEntityParts() []QuotaEntityPart {
	count, n := binary.Uvarint(r.payload)
	if n <= 0 || count > uint64(len(r.payload)-n) {
		r.fail("count of field %d", r.tag)
		return nil
	}
	if count == 0 || !r.spend(int(count)*quotaEntityPartBytes) {
		return nil
	}
	v := make([]QuotaEntityPart, count)
	p := r.payload[n:]
	for i := range v {
		length, m := binary.Uvarint(p)
		if m <= 0 || length > uint64(len(p)-m) {
			r.fail("length of quota entity part %d", i)
			return nil
		}
		nested := &fieldReader{rest: p[m : m+int(length)], budget: r.budget, err: r.err}
		for nested.next() {
			switch nested.tag {
			case 0:
				v[i].Type = nested.string()
			case 1:
				v[i].Name = nested.string()
			case 2:
				v[i].Default = nested.bool()
			}
		}
		r.budget, r.err = nested.budget, nested.err
		p = p[m+int(length):]
	}
	if len(p) != 0 {
		r.fail("%d bytes after the quota entity parts", len(p))
		return nil
	}
	return v
}
