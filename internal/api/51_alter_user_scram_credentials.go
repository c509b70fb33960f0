package api

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/auth"
	"github.com/sluicelog/sluice/internal/controller"
	"github.com/sluicelog/sluice/internal/kraft"
	"github.com/sluicelog/sluice/internal/metadata"
)

// AlterUserScramCredentials v0 (KIP-554) sets or deletes users' SCRAM
// credentials through the controller, which records only the keys derived
// from the salted password. One result per user, all-or-nothing per user.
var alterUserScramCredentialsHandler = handler{key: 51, minVersion: 0, maxVersion: 0, serve: serveAlterUserScramCredentials}

func serveAlterUserScramCredentials(ctx context.Context, b *Broker, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.AlterUserSCRAMCredentialsRequest)
	resp := req.ResponseKind().(*kmsg.AlterUserSCRAMCredentialsResponse)
	// ALTER on the cluster, as in Kafka; without it every user is refused.
	if err := b.authz(r).cluster(auth.OpAlter); err != nil {
		for _, user := range scramRequestUsers(req) {
			res := kmsg.NewAlterUserSCRAMCredentialsResponseResult()
			res.User, res.ErrorCode, res.ErrorMessage = user, errorCode(err), errorMessage(err)
			resp.Results = append(resp.Results, res)
		}
		return resp, nil
	}
	var creq controller.AlterUserScramCredentialsRequest
	for _, d := range req.Deletions {
		creq.Deletions = append(creq.Deletions, controller.ScramDeletion{Name: d.Name, Mechanism: metadata.ScramMechanism(d.Mechanism)})
	}
	for _, u := range req.Upsertions {
		creq.Upsertions = append(creq.Upsertions, controller.ScramUpsertion{
			Name: u.Name, Mechanism: metadata.ScramMechanism(u.Mechanism), Iterations: u.Iterations,
			Salt: u.Salt, SaltedPassword: u.SaltedPassword,
		})
	}
	ctx, cancel := context.WithTimeout(ctx, adminDefaultTimeout)
	defer cancel()
	out, err := adminSubmit[controller.AlterUserScramCredentialsResponse](ctx, b, kraft.AlterUserScramCredentials{Request: creq})
	if err != nil {
		for _, user := range scramRequestUsers(req) {
			res := kmsg.NewAlterUserSCRAMCredentialsResponseResult()
			res.User, res.ErrorCode, res.ErrorMessage = user, errorCode(err), errorMessage(err)
			resp.Results = append(resp.Results, res)
		}
		return resp, nil
	}
	for _, rr := range out.Results {
		res := kmsg.NewAlterUserSCRAMCredentialsResponseResult()
		res.User, res.ErrorCode, res.ErrorMessage = rr.User, errorCode(rr.Err), errorMessage(rr.Err)
		resp.Results = append(resp.Results, res)
	}
	return resp, nil
}

// scramRequestUsers are the users a request names, each once, in order.
func scramRequestUsers(req *kmsg.AlterUserSCRAMCredentialsRequest) []string {
	var users []string
	seen := map[string]bool{}
	for _, d := range req.Deletions {
		if !seen[d.Name] {
			seen[d.Name] = true
			users = append(users, d.Name)
		}
	}
	for _, u := range req.Upsertions {
		if !seen[u.Name] {
			seen[u.Name] = true
			users = append(users, u.Name)
		}
	}
	return users
}
