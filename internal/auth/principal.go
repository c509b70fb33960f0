// Package auth holds who a request comes from: the principal a listener
// authenticated (TLS client certificate, SASL) and the pure pieces of
// Kafka's security model that decide on it. It is a leaf: the network
// server puts the principal into each request's context, the API handlers
// read it from there, and neither needs the other to know how it got there.
package auth

import "context"

// Principal is an authenticated identity as Kafka writes it, "User:alice".
// Kafka's default principal builder gives every connection of a PLAINTEXT
// listener User:ANONYMOUS, so that is what a request without one carries.
type Principal struct {
	Type string // "User" for every principal Sluice builds
	Name string
}

// Anonymous is the principal of an unauthenticated connection.
var Anonymous = Principal{Type: "User", Name: "ANONYMOUS"}

// User returns the User principal with the given name.
func User(name string) Principal { return Principal{Type: "User", Name: name} }

// String is the form ACLs and logs use: "User:alice".
func (p Principal) String() string { return p.Type + ":" + p.Name }

// IsAnonymous reports whether p is the unauthenticated principal.
func (p Principal) IsAnonymous() bool { return p == Anonymous }

type principalKey struct{}

// WithPrincipal returns ctx carrying p, for every request of a connection
// once it has authenticated.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the principal ctx carries, or Anonymous.
func FromContext(ctx context.Context) Principal {
	if p, ok := ctx.Value(principalKey{}).(Principal); ok {
		return p
	}
	return Anonymous
}
