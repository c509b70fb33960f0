package api

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/wire"
)

// ApiVersions v0–4. Clients send it first, at whatever version they know;
// see unsupportedAPIVersions for versions above ours.
var apiVersionsHandler = handler{key: 18, minVersion: 0, maxVersion: 4, serve: serveAPIVersions}

func serveAPIVersions(_ context.Context, _ *Broker, r *Request) (kmsg.Response, error) {
	resp := r.Body.ResponseKind().(*kmsg.ApiVersionsResponse)
	resp.ApiKeys = advertisedKeys
	return resp, nil
}

// unsupportedAPIVersions answers an ApiVersions request above our newest
// version as Kafka does (KIP-511): a v0-format body with
// UNSUPPORTED_VERSION and our ApiVersions range, so the client retries
// with a version we speak instead of seeing a closed connection.
func unsupportedAPIVersions(h wire.RequestHeader) wire.Response {
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.Version = 0
	resp.ErrorCode = kerr.UnsupportedVersion.Code
	resp.ApiKeys = []kmsg.ApiVersionsResponseApiKey{{
		ApiKey: apiVersionsHandler.key, MinVersion: apiVersionsHandler.minVersion, MaxVersion: apiVersionsHandler.maxVersion,
	}}
	return wire.Frame(wire.AppendResponse(nil, h.APIKey, 0, h.CorrelationID, resp))
}
