package kraft

import (
	"bytes"
	"encoding/gob"
	"errors"
	"fmt"
	"reflect"
	"slices"

	"github.com/sluicelog/sluice/internal/controller"
	"github.com/sluicelog/sluice/internal/metadata"
	"github.com/sluicelog/sluice/internal/raft"
)

// Command is a request for the active controller. The controller decides it
// against the newest Image; its records are committed as one Raft entry.
//
// decide is unexported so that only the commands below exist: each must
// also be registered with gob in init, or it fails the first time a
// follower forwards it, which a cluster of one never does.
type Command interface {
	decide(c *controller.Controller, img *metadata.Image, nowMs int64) ([]metadata.Record, any)
}

// The commands the broker submits, one per controller decision. Only the
// broker-session commands read nowMs: a session deadline is the active
// controller's soft state, while every other decision depends on the Image
// and the request alone, so a retry on a new leader decides the same way.
type (
	CreateTopics struct {
		Request controller.CreateTopicsRequest
	}
	DeleteTopics struct {
		Request controller.DeleteTopicsRequest
	}
	CreatePartitions struct {
		Request controller.CreatePartitionsRequest
	}
	RegisterBroker struct {
		Request controller.RegisterBrokerRequest
	}
	BrokerHeartbeat struct {
		Request controller.BrokerHeartbeatRequest
	}
	// AllocateProducerIDs carries the broker epoch (KIP-730) so that only
	// the broker's current registration is given a block: a request from
	// an earlier incarnation, or from a fenced broker, is refused.
	AllocateProducerIDs struct {
		BrokerID    int32
		BrokerEpoch int64
	}
	AlterConfigs struct {
		Request controller.AlterConfigsRequest
	}
	IncrementalAlterConfigs struct {
		Request controller.IncrementalAlterConfigsRequest
	}
	ElectLeaders struct {
		Request controller.ElectLeadersRequest
	}
	AlterPartition struct {
		Request controller.AlterPartitionRequest
	}
	AlterUserScramCredentials struct {
		Request controller.AlterUserScramCredentialsRequest
	}
	// BootstrapScramCredentials adds credentials created offline before
	// the node's first start; its response is an error or nil.
	BootstrapScramCredentials struct {
		Credentials []metadata.UserScramCredential
	}
	CreateACLs struct {
		Request controller.CreateACLsRequest
	}
	DeleteACLs struct {
		Request controller.DeleteACLsRequest
	}
)

func (c CreateACLs) decide(ctl *controller.Controller, img *metadata.Image, _ int64) ([]metadata.Record, any) {
	return ctl.CreateACLs(img, c.Request)
}

func (c DeleteACLs) decide(ctl *controller.Controller, img *metadata.Image, _ int64) ([]metadata.Record, any) {
	return ctl.DeleteACLs(img, c.Request)
}

func (c BootstrapScramCredentials) decide(ctl *controller.Controller, img *metadata.Image, _ int64) ([]metadata.Record, any) {
	records, err := ctl.BootstrapScramCredentials(img, c.Credentials)
	return records, BootstrapScramCredentialsResponse{Err: err, Added: len(records)}
}

// BootstrapScramCredentialsResponse says how many credentials were new.
type BootstrapScramCredentialsResponse struct {
	Err   error
	Added int
}

func (c AlterUserScramCredentials) decide(ctl *controller.Controller, img *metadata.Image, _ int64) ([]metadata.Record, any) {
	return ctl.AlterUserScramCredentials(img, c.Request)
}

func (c AlterConfigs) decide(ctl *controller.Controller, img *metadata.Image, _ int64) ([]metadata.Record, any) {
	return ctl.AlterConfigs(img, c.Request)
}

func (c IncrementalAlterConfigs) decide(ctl *controller.Controller, img *metadata.Image, _ int64) ([]metadata.Record, any) {
	return ctl.IncrementalAlterConfigs(img, c.Request)
}

func (c ElectLeaders) decide(ctl *controller.Controller, img *metadata.Image, _ int64) ([]metadata.Record, any) {
	return ctl.ElectLeaders(img, c.Request)
}

func (c AlterPartition) decide(ctl *controller.Controller, img *metadata.Image, _ int64) ([]metadata.Record, any) {
	return ctl.AlterPartition(img, c.Request)
}

func (c CreateTopics) decide(ctl *controller.Controller, img *metadata.Image, _ int64) ([]metadata.Record, any) {
	return ctl.CreateTopics(img, c.Request)
}

func (c DeleteTopics) decide(ctl *controller.Controller, img *metadata.Image, _ int64) ([]metadata.Record, any) {
	return ctl.DeleteTopics(img, c.Request)
}

func (c CreatePartitions) decide(ctl *controller.Controller, img *metadata.Image, _ int64) ([]metadata.Record, any) {
	return ctl.CreatePartitions(img, c.Request)
}

func (c RegisterBroker) decide(ctl *controller.Controller, img *metadata.Image, nowMs int64) ([]metadata.Record, any) {
	return ctl.RegisterBroker(img, c.Request, nowMs)
}

func (c BrokerHeartbeat) decide(ctl *controller.Controller, img *metadata.Image, nowMs int64) ([]metadata.Record, any) {
	return ctl.BrokerHeartbeat(img, c.Request, nowMs)
}

func (c AllocateProducerIDs) decide(ctl *controller.Controller, img *metadata.Image, _ int64) ([]metadata.Record, any) {
	return ctl.AllocateProducerIDs(img, c.BrokerID, c.BrokerEpoch)
}

// Forwarding: a command submitted on a follower travels to the leader and
// its response back, gob-encoded (an internal RPC between controllers of
// the same build, not an on-disk format). Responses carry errors, which gob
// cannot send as they are, so every error value is replaced by a WireError
// that still matches its controller sentinel with errors.Is.
//
// gob sends the registered name of each concrete type, and that name
// includes the package's import path (.../internal/kraft.CreateTopics).
// Moving or renaming a package or one of these types breaks
// forwarding between controllers running different builds, which happens
// during a rolling upgrade, until every controller runs the new build.

func init() {
	for _, c := range []Command{CreateTopics{}, DeleteTopics{}, CreatePartitions{}, RegisterBroker{}, BrokerHeartbeat{},
		AllocateProducerIDs{}, AlterConfigs{}, IncrementalAlterConfigs{}, ElectLeaders{}, AlterPartition{},
		AlterUserScramCredentials{}, BootstrapScramCredentials{}} {
		gob.Register(c)
	}
	gob.Register(CreateACLs{})
	gob.Register(DeleteACLs{})
	gob.Register(controller.CreateACLsResponse{})
	gob.Register(controller.DeleteACLsResponse{})
	for _, r := range []any{controller.CreateTopicsResponse{}, controller.DeleteTopicsResponse{}, controller.CreatePartitionsResponse{},
		controller.RegisterBrokerResponse{}, controller.BrokerHeartbeatResponse{}, controller.AllocateProducerIDsResponse{},
		controller.AlterConfigsResponse{}, controller.ElectLeadersResponse{}, controller.AlterPartitionResponse{},
		controller.AlterUserScramCredentialsResponse{}, BootstrapScramCredentialsResponse{}} {
		gob.Register(r)
	}
	gob.Register(&WireError{})
}

// WireError is an error that crossed from the leader to a follower.
//
// Sentinel is an index rather than the error's text: both ends share
// wireSentinels because they run the same build. Appending to the list
// keeps old indexes meaning the same; reordering it does not.
type WireError struct {
	Sentinel int // index in wireSentinels; -1 when none matched
	Message  string
}

// wireSentinels are the errors a WireError still matches: the controller's,
// then the quorum's that say whether a failed decision was committed (so a
// caller can tell a safe retry from an unknown outcome).
var wireSentinels = append(slices.Clone(controller.Errors),
	raft.ErrProposalDropped, raft.ErrProposalLost, raft.ErrOutcomeUnknown, raft.ErrTooManyProposals)

func (e *WireError) Error() string { return e.Message }

// Is matches the sentinel the error wrapped on the leader.
func (e *WireError) Is(target error) bool {
	return e.Sentinel >= 0 && e.Sentinel < len(wireSentinels) && wireSentinels[e.Sentinel] == target
}

func toWireError(err error) *WireError {
	for i, sentinel := range wireSentinels {
		if errors.Is(err, sentinel) {
			return &WireError{Sentinel: i, Message: err.Error()}
		}
	}
	return &WireError{Sentinel: -1, Message: err.Error()}
}

// wireErrors replaces, in place, every non-nil error field reachable
// through structs and slices of v (a pointer) with a WireError.
//
// Only fields declared as the error interface are replaced: those are what
// gob cannot encode (the concrete type behind them is usually an
// unregistered *fmt.wrapError), while a field of a concrete type keeps its
// type. Unexported fields are skipped because gob does not send them.
func wireErrors(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			wireErrors(v.Elem())
		}
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				wireErrors(v.Field(i))
			}
		}
	case reflect.Slice, reflect.Array:
		for i := 0; i < v.Len(); i++ {
			wireErrors(v.Index(i))
		}
	case reflect.Interface:
		if err, ok := v.Interface().(error); ok && err != nil && v.Type() == errorType && v.CanSet() {
			v.Set(reflect.ValueOf(toWireError(err)))
		}
	}
}

var errorType = reflect.TypeFor[error]()

type forwardRequest struct{ Command Command }

// forwardReply carries Index so that the follower waits until its own
// image has applied that entry before it answers: a client that creates a
// topic through any broker then finds it in that broker's Metadata at once.
type forwardReply struct {
	Response any
	Index    uint64 // the entry the decision committed; 0 when none
	Err      *WireError
}

func encodeForward(cmd Command) ([]byte, error) {
	var b bytes.Buffer
	if err := gob.NewEncoder(&b).Encode(forwardRequest{Command: cmd}); err != nil {
		return nil, fmt.Errorf("encode command %T: %w", cmd, err)
	}
	return b.Bytes(), nil
}

func decodeForward(data []byte) (Command, error) {
	var req forwardRequest
	if err := gob.NewDecoder(bytes.NewReader(data)).Decode(&req); err != nil {
		return nil, fmt.Errorf("decode forwarded command: %w", err)
	}
	return req.Command, nil
}

func encodeReply(resp any, index uint64, err error) ([]byte, error) {
	reply := forwardReply{Response: resp, Index: index}
	if err != nil {
		reply.Err = toWireError(err)
	}
	if resp != nil {
		// Copy into an addressable value so error fields can be replaced.
		v := reflect.New(reflect.TypeOf(resp))
		v.Elem().Set(reflect.ValueOf(resp))
		wireErrors(v)
		reply.Response = v.Elem().Interface()
	}
	var b bytes.Buffer
	if err := gob.NewEncoder(&b).Encode(reply); err != nil {
		return nil, fmt.Errorf("encode reply: %w", err)
	}
	return b.Bytes(), nil
}

func decodeReply(data []byte) (any, uint64, error) {
	var reply forwardReply
	if err := gob.NewDecoder(bytes.NewReader(data)).Decode(&reply); err != nil {
		return nil, 0, fmt.Errorf("decode forwarded reply: %w", err)
	}
	if reply.Err != nil {
		return reply.Response, reply.Index, reply.Err
	}
	return reply.Response, reply.Index, nil
}
