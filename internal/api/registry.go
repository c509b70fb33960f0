package api

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/wire"
)

// handler serves one API key over a version range. Exactly one of serve
// and serveFrame is set: serveFrame is for responses framed by hand (Fetch
// sends segment bytes from the file).
type handler struct {
	key        int16
	minVersion int16
	maxVersion int16
	serve      func(ctx context.Context, b *Broker, r *Request) (kmsg.Response, error)
	serveFrame func(ctx context.Context, b *Broker, r *Request) (wire.Response, error)
	// serveDeferred, when set, is serve split in two for a server that
	// defers responses (Server.DeferResponses): it returns once the
	// request's effects are ordered (a produce's batches queued in their
	// logs), with pending set if it calls finished later, from another
	// goroutine, with the response.
	serveDeferred func(ctx context.Context, b *Broker, r *Request, finished func(kmsg.Response)) (resp kmsg.Response, pending bool, err error)
}

// handlers lists every API this broker serves, in key order. ApiVersions
// is generated from this list.
var handlers = []*handler{
	&produceHandler,                      // 0
	&fetchHandler,                        // 1
	&listOffsetsHandler,                  // 2
	&metadataHandler,                     // 3
	&offsetCommitHandler,                 // 8
	&offsetFetchHandler,                  // 9
	&findCoordinatorHandler,              // 10
	&joinGroupHandler,                    // 11
	&heartbeatHandler,                    // 12
	&leaveGroupHandler,                   // 13
	&syncGroupHandler,                    // 14
	&describeGroupsHandler,               // 15
	&listGroupsHandler,                   // 16
	&saslHandshakeHandler,                // 17
	&apiVersionsHandler,                  // 18
	&createTopicsHandler,                 // 19
	&deleteTopicsHandler,                 // 20
	&deleteRecordsHandler,                // 21
	&initProducerIDHandler,               // 22
	&offsetForLeaderEpochHandler,         // 23
	&addPartitionsToTxnHandler,           // 24
	&addOffsetsToTxnHandler,              // 25
	&endTxnHandler,                       // 26
	&writeTxnMarkersHandler,              // 27
	&txnOffsetCommitHandler,              // 28
	&describeACLsHandler,                 // 29
	&createACLsHandler,                   // 30
	&deleteACLsHandler,                   // 31
	&describeConfigsHandler,              // 32
	&alterConfigsHandler,                 // 33
	&describeLogDirsHandler,              // 35
	&saslAuthenticateHandler,             // 36
	&createPartitionsHandler,             // 37
	&deleteGroupsHandler,                 // 42
	&electLeadersHandler,                 // 43
	&incrementalAlterConfigsHandler,      // 44
	&offsetDeleteHandler,                 // 47
	&describeClientQuotasHandler,         // 48
	&alterClientQuotasHandler,            // 49
	&describeUserScramCredentialsHandler, // 50
	&alterUserScramCredentialsHandler,    // 51
	&describeQuorumHandler,               // 55
	&describeClusterHandler,              // 60
	&describeProducersHandler,            // 61
	&describeTransactionsHandler,         // 65
	&listTransactionsHandler,             // 66
	&consumerGroupHeartbeatHandler,       // 68
	&consumerGroupDescribeHandler,        // 69
	&shareGroupHeartbeatHandler,          // 76
	&shareGroupDescribeHandler,           // 77
	&shareFetchHandler,                   // 78
	&shareAcknowledgeHandler,             // 79
	&initializeShareGroupStateHandler,    // 83
	&readShareGroupStateHandler,          // 84
	&writeShareGroupStateHandler,         // 85
	&deleteShareGroupStateHandler,        // 86
	&readShareGroupStateSummaryHandler,   // 87
	&describeShareGroupOffsetsHandler,    // 90
	&alterShareGroupOffsetsHandler,       // 91
	&deleteShareGroupOffsetsHandler,      // 92
}

// byKey indexes handlers by API key.
var byKey = func() map[int16]*handler {
	m := make(map[int16]*handler, len(handlers))
	for _, h := range handlers {
		m[h.key] = h
	}
	return m
}()

func lookup(key int16) *handler { return byKey[key] }

// advertisedKeys is the ApiVersions response's key list, in key order.
// It is built in init because ApiVersions' own handler reads it.
var advertisedKeys []kmsg.ApiVersionsResponseApiKey

func init() {
	for _, h := range handlers {
		advertisedKeys = append(advertisedKeys, kmsg.ApiVersionsResponseApiKey{ApiKey: h.key, MinVersion: h.minVersion, MaxVersion: h.maxVersion})
	}
}
