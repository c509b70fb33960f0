package api

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/auth"
	"github.com/sluicelog/sluice/internal/controller"
	"github.com/sluicelog/sluice/internal/metadata"
)

// DescribeUserScramCredentials v0 (KIP-554) lists users' SCRAM mechanisms
// and iteration counts, never salts or keys. Null users means every user;
// a named user without credentials gets RESOURCE_NOT_FOUND, and a user
// named twice DUPLICATE_RESOURCE, as Kafka answers.
var describeUserScramCredentialsHandler = handler{key: 50, minVersion: 0, maxVersion: 0, serve: serveDescribeUserScramCredentials}

func serveDescribeUserScramCredentials(_ context.Context, b *Broker, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.DescribeUserSCRAMCredentialsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeUserSCRAMCredentialsResponse)
	if err := b.authz(r).cluster(auth.OpDescribe); err != nil {
		resp.ErrorCode, resp.ErrorMessage = errorCode(err), errorMessage(err)
		return resp, nil
	}
	users := b.Control.Image().ScramUsers()
	byName := make(map[string]metadata.ScramUser, len(users))
	for _, u := range users {
		byName[u.Name] = u
	}
	if req.Users == nil {
		for _, u := range users {
			resp.Results = append(resp.Results, scramResult(u))
		}
		return resp, nil
	}
	seen := map[string]int{}
	for _, ru := range req.Users {
		seen[ru.Name]++
	}
	for _, ru := range req.Users {
		if seen[ru.Name] == 0 {
			continue // a duplicate, answered once
		}
		res := kmsg.NewDescribeUserSCRAMCredentialsResponseResult()
		res.User = ru.Name
		u, ok := byName[ru.Name]
		switch {
		case seen[ru.Name] > 1:
			err := fmt.Errorf("%w: user %q asked for more than once", controller.ErrDuplicateResource, ru.Name)
			res.ErrorCode, res.ErrorMessage = errorCode(err), errorMessage(err)
		case !ok:
			err := fmt.Errorf("%w: attempt to describe a user credential that does not exist: %s", controller.ErrResourceNotFound, ru.Name)
			res.ErrorCode, res.ErrorMessage = errorCode(err), errorMessage(err)
		default:
			res = scramResult(u)
		}
		seen[ru.Name] = 0
		resp.Results = append(resp.Results, res)
	}
	return resp, nil
}

func scramResult(u metadata.ScramUser) kmsg.DescribeUserSCRAMCredentialsResponseResult {
	res := kmsg.NewDescribeUserSCRAMCredentialsResponseResult()
	res.User = u.Name
	for i, m := range u.Mechanisms {
		info := kmsg.NewDescribeUserSCRAMCredentialsResponseResultCredentialInfo()
		info.Mechanism, info.Iterations = int8(m), u.Iterations[i]
		res.CredentialInfos = append(res.CredentialInfos, info)
	}
	return res
}

func scramMechanismByName(name string) (metadata.ScramMechanism, bool) {
	return metadata.ParseScramMechanism(name)
}
