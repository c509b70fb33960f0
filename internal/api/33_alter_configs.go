package api

import (
	"context"
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/auth"
	"github.com/sluicelog/sluice/internal/controller"
	"github.com/sluicelog/sluice/internal/kraft"
	"github.com/sluicelog/sluice/internal/metadata"
)

// AlterConfigs v0–2, decided by the controller: each resource's configs
// are replaced by the given set (a key left out reverts to its default).
// Topic (2) and broker (4) resources; a broker resource is "" for the
// cluster-wide default or this broker's id.
var alterConfigsHandler = handler{key: 33, minVersion: 0, maxVersion: 2, serve: serveAlterConfigs}

func serveAlterConfigs(ctx context.Context, b *Broker, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.AlterConfigsRequest)
	resp := req.ResponseKind().(*kmsg.AlterConfigsResponse)
	keys := make([]alterConfigsKey, len(req.Resources))
	for i, res := range req.Resources {
		keys[i] = alterConfigsKey{res.ResourceType, res.ResourceName}
	}
	errs := alterConfigsPrecheck(b, keys, func(i int) (nulls []string) {
		for _, c := range req.Resources[i].Configs {
			if c.Value == nil {
				nulls = append(nulls, c.Name)
			}
		}
		return nulls
	})
	alterConfigsAuthorize(b.authz(r), keys, errs)
	creq := controller.AlterConfigsRequest{ValidateOnly: req.ValidateOnly}
	var sent []int
	for i, res := range req.Resources {
		if errs[i] != nil {
			continue
		}
		ar := controller.AlterConfigsResource{ConfigResource: keys[i].resource()}
		for _, c := range res.Configs {
			ar.Configs = append(ar.Configs, controller.ConfigEntry{Name: c.Name, Value: *c.Value})
		}
		creq.Resources = append(creq.Resources, ar)
		sent = append(sent, i)
	}
	if len(sent) > 0 {
		ctx, cancel := adminContext(ctx, alterConfigsTimeoutMs)
		defer cancel()
		cresp, err := adminSubmit[controller.AlterConfigsResponse](ctx, b, kraft.AlterConfigs{Request: creq})
		alterConfigsResults(errs, sent, cresp, err)
	}
	for i, k := range keys {
		out := kmsg.NewAlterConfigsResponseResource()
		out.ResourceType, out.ResourceName = k.typ, k.name
		out.ErrorCode, out.ErrorMessage = errorCode(errs[i]), errorMessage(errs[i])
		resp.Resources = append(resp.Resources, out)
	}
	return resp, nil
}

// alterConfigsTimeoutMs bounds a config change: neither AlterConfigs nor
// IncrementalAlterConfigs carries a timeout.
const alterConfigsTimeoutMs = 30_000

// alterConfigsKey names one resource of an AlterConfigs or
// IncrementalAlterConfigs request.
type alterConfigsKey struct {
	typ  kmsg.ConfigResourceType
	name string
}

func (k alterConfigsKey) resource() controller.ConfigResource {
	return controller.ConfigResource{Type: metadata.ConfigResourceType(k.typ), Name: k.name}
}

// alterConfigsPrecheck returns, per resource, what the broker rejects
// before the controller sees it, as Kafka's brokers do: a resource named
// twice (every copy fails), a resource type other than topic, broker or group,
// a broker resource naming another broker, and a null value where one is
// needed (nulls(i) lists those keys of resource i).
func alterConfigsPrecheck(b *Broker, keys []alterConfigsKey, nulls func(i int) []string) []error {
	counts := map[alterConfigsKey]int{}
	for _, k := range keys {
		counts[k]++
	}
	errs := make([]error, len(keys))
	for i, k := range keys {
		switch {
		case counts[k] > 1:
			errs[i] = adminInvalidRequest("each resource must appear at most once; %s appears %d times", alterConfigsDescribe(k), counts[k])
		case k.typ == kmsg.ConfigResourceTypeBroker:
			errs[i] = adminCheckBrokerResource(b, k.name)
		case k.typ == kmsg.ConfigResourceTypeBrokerLogger:
			errs[i] = adminInvalidRequest("broker loggers (resource type 8) are not supported: Sluice has no per-logger log levels to describe or change")
		case k.typ != kmsg.ConfigResourceTypeTopic && k.typ != kmsg.ConfigResourceTypeGroupConfig:
			errs[i] = adminInvalidRequest("unsupported config resource type %d", k.typ)
		}
		if errs[i] != nil {
			continue
		}
		if keys := nulls(i); len(keys) > 0 {
			errs[i] = adminInvalidRequest("null value not supported for %s of %s", strings.Join(keys, ", "), alterConfigsDescribe(k))
		}
	}
	return errs
}

// alterConfigsResults fills errs[sent[j]] with the controller's verdict on
// the j-th resource it was sent, or with err when the request failed.
func alterConfigsResults(errs []error, sent []int, cresp controller.AlterConfigsResponse, err error) {
	if err == nil && len(cresp.Resources) != len(sent) {
		err = fmt.Errorf("controller answered %d resources for %d", len(cresp.Resources), len(sent))
	}
	for j, i := range sent {
		if err != nil {
			errs[i] = err
		} else {
			errs[i] = cresp.Resources[j].Err
		}
	}
}

func alterConfigsDescribe(k alterConfigsKey) string {
	switch k.typ {
	case kmsg.ConfigResourceTypeTopic:
		return fmt.Sprintf("topic %q", k.name)
	case kmsg.ConfigResourceTypeBroker:
		return fmt.Sprintf("broker %q", k.name)
	case kmsg.ConfigResourceTypeGroupConfig:
		return fmt.Sprintf("group %q", k.name)
	}
	return fmt.Sprintf("resource %d %q", k.typ, k.name)
}

// alterConfigsAuthorize sets errs[i] for each resource the principal may
// not ALTER_CONFIGS. It wins over any other error of the resource, so an
// unauthorized principal learns nothing about it.
func alterConfigsAuthorize(z *authz, keys []alterConfigsKey, errs []error) {
	for i, k := range keys {
		if err := z.configResource(auth.OpAlterConfigs, k.typ, k.name); err != nil {
			errs[i] = err
		}
	}
}
