package quota

import "github.com/sluicelog/sluice/internal/metadata"

// Kind is the quota a sensor measures.
type Kind int

const (
	Produce Kind = iota // producer_byte_rate: request bytes of Produce
	Fetch               // consumer_byte_rate: response bytes of consumer Fetch
	Request             // request_percentage: handler time of every request
)

// Key returns the quota key that bounds the kind.
func (k Kind) Key() string {
	switch k {
	case Produce:
		return metadata.QuotaProducerByteRate
	case Fetch:
		return metadata.QuotaConsumerByteRate
	default:
		return metadata.QuotaRequestPercentage
	}
}

// Tags name the sensor a client's requests are counted in. They follow
// the entity whose quota applies, as Kafka's default quota callback does:
// a quota set on a user (or the default user) is shared by all of that
// user's client ids, so the client id is left out; one set on a client id
// is shared by every user of it; one on a (user, client id) pair is that
// pair's own. A default entity still counts each user or client id apart:
// the default is a limit per user, not one for all of them together.
type Tags struct {
	User     string
	ClientID string
}

// Lookup returns the quotas set on exactly one entity (Image.ClientQuotas).
type Lookup func(metadata.QuotaEntity) map[string]float64

// Resolve finds the quota of key for a request from user (the principal's
// name) with clientID, in Kafka's order of precedence, most specific
// first:
//
//	user, client-id            user, <default> client-id    user
//	<default> user, client-id  <default> user, <default> client-id
//	<default> user             client-id                    <default> client-id
//
// It returns the bound and the sensor tags, and ok false when no quota of
// that key applies (the request is not limited).
func Resolve(lookup Lookup, key, user, clientID string) (bound float64, tags Tags, ok bool) {
	u, c := metadata.Named(user), metadata.Named(clientID)
	d := metadata.DefaultName
	candidates := [...]struct {
		entity metadata.QuotaEntity
		tags   Tags
	}{
		{metadata.QuotaEntity{User: u, ClientID: c}, Tags{user, clientID}},
		{metadata.QuotaEntity{User: u, ClientID: d}, Tags{user, clientID}},
		{metadata.QuotaEntity{User: u}, Tags{User: user}},
		{metadata.QuotaEntity{User: d, ClientID: c}, Tags{user, clientID}},
		{metadata.QuotaEntity{User: d, ClientID: d}, Tags{user, clientID}},
		{metadata.QuotaEntity{User: d}, Tags{User: user}},
		{metadata.QuotaEntity{ClientID: c}, Tags{ClientID: clientID}},
		{metadata.QuotaEntity{ClientID: d}, Tags{ClientID: clientID}},
	}
	for _, cand := range candidates {
		if v, found := lookup(cand.entity)[key]; found {
			return v, cand.tags, true
		}
	}
	return 0, Tags{}, false
}

// ResolveIP finds the connection creation rate for an IP: the IP's own
// quota, else the default IP's.
func ResolveIP(lookup Lookup, ip string) (bound float64, ok bool) {
	for _, e := range []metadata.QuotaEntity{{IP: metadata.Named(ip)}, {IP: metadata.DefaultName}} {
		if v, found := lookup(e)[metadata.QuotaConnectionCreationRate]; found {
			return v, true
		}
	}
	return 0, false
}
