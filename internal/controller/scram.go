package controller

import (
	"fmt"

	"github.com/sluicelog/sluice/internal/auth"
	"github.com/sluicelog/sluice/internal/metadata"
)

// ScramUpsertion sets a user's SCRAM credential for one mechanism. As in
// Kafka's AlterUserScramCredentials, the client sends the salt and the
// salted password; the controller derives the stored and server keys and
// records only those.
type ScramUpsertion struct {
	Name           string
	Mechanism      metadata.ScramMechanism
	Iterations     int32
	Salt           []byte
	SaltedPassword []byte
}

// ScramDeletion removes a user's SCRAM credential for one mechanism.
type ScramDeletion struct {
	Name      string
	Mechanism metadata.ScramMechanism
}

// AlterUserScramCredentialsRequest is Kafka's AlterUserScramCredentials.
type AlterUserScramCredentialsRequest struct {
	Deletions  []ScramDeletion
	Upsertions []ScramUpsertion
}

// ScramResult is one user's outcome: all of a user's alterations are
// applied, or none.
type ScramResult struct {
	User string
	Err  error
}

// AlterUserScramCredentialsResponse has one result per user, in the order
// users first appear (deletions, then upsertions).
type AlterUserScramCredentialsResponse struct {
	Results []ScramResult
}

// AlterUserScramCredentials decides credential changes, user by user, with
// Kafka's rules: a user named twice for one mechanism is a duplicate, a
// deletion of a credential that does not exist is not found, and a salt,
// salted password or iteration count a SCRAM server could not use is an
// unacceptable credential.
func (c *Controller) AlterUserScramCredentials(img *metadata.Image, req AlterUserScramCredentialsRequest) ([]metadata.Record, AlterUserScramCredentialsResponse) {
	var order []string
	byUser := map[string][]metadata.Record{}
	errs := map[string]error{}
	seen := map[scramAlteration]bool{}
	note := func(user string, mech metadata.ScramMechanism, rec metadata.Record, err error) {
		if _, ok := byUser[user]; !ok {
			order = append(order, user)
			byUser[user] = nil
		}
		key := scramAlteration{user, mech}
		if err == nil && seen[key] {
			err = fmt.Errorf("%w: user %q is altered twice for %s", ErrDuplicateResource, user, mech)
		}
		seen[key] = true
		if errs[user] == nil && err != nil {
			errs[user] = err
		}
		byUser[user] = append(byUser[user], rec)
	}
	for _, d := range req.Deletions {
		note(d.Name, d.Mechanism, &metadata.RemoveUserScramCredential{Name: d.Name, Mechanism: d.Mechanism}, checkScramDeletion(img, d))
	}
	for _, u := range req.Upsertions {
		rec, err := scramRecord(u)
		note(u.Name, u.Mechanism, rec, err)
	}
	var records []metadata.Record
	resp := AlterUserScramCredentialsResponse{Results: make([]ScramResult, 0, len(order))}
	for _, user := range order {
		if errs[user] == nil {
			records = append(records, byUser[user]...)
		}
		resp.Results = append(resp.Results, ScramResult{User: user, Err: errs[user]})
	}
	return records, resp
}

type scramAlteration struct {
	user string
	mech metadata.ScramMechanism
}

func checkScramMechanism(user string, m metadata.ScramMechanism) error {
	if user == "" {
		return fmt.Errorf("%w: empty user name", ErrUnacceptableCredential)
	}
	if m != metadata.ScramSHA256 && m != metadata.ScramSHA512 {
		return fmt.Errorf("%w: mechanism %d", ErrUnsupportedSaslMechanism, int8(m))
	}
	return nil
}

func checkScramDeletion(img *metadata.Image, d ScramDeletion) error {
	if err := checkScramMechanism(d.Name, d.Mechanism); err != nil {
		return err
	}
	if _, ok := img.ScramCredential(d.Name, d.Mechanism); !ok {
		return fmt.Errorf("%w: user %q has no %s credential", ErrResourceNotFound, d.Name, d.Mechanism)
	}
	return nil
}

func scramRecord(u ScramUpsertion) (metadata.Record, error) {
	if err := checkScramMechanism(u.Name, u.Mechanism); err != nil {
		return nil, err
	}
	if u.Iterations < auth.ScramMinIterations || u.Iterations > auth.ScramMaxIterations {
		return nil, fmt.Errorf("%w: %d iterations, want %d to %d", ErrUnacceptableCredential,
			u.Iterations, auth.ScramMinIterations, auth.ScramMaxIterations)
	}
	if len(u.Salt) == 0 || len(u.SaltedPassword) == 0 {
		return nil, fmt.Errorf("%w: empty salt or salted password", ErrUnacceptableCredential)
	}
	storedKey, serverKey, err := auth.ScramKeys(u.Mechanism.String(), u.SaltedPassword)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnsupportedSaslMechanism, err)
	}
	return &metadata.UserScramCredential{
		Name: u.Name, Mechanism: u.Mechanism, Salt: u.Salt,
		StoredKey: storedKey, ServerKey: serverKey, Iterations: u.Iterations,
	}, nil
}

// BootstrapScramCredentials adds credentials made offline (`sluice user
// create --data-dir`) that the cluster does not have yet: a user's
// credential for a mechanism, once set online, is never overwritten by a
// stale bootstrap file, and replaying the file after a crash changes
// nothing. The records were derived offline, so only their shape is
// checked.
func (c *Controller) BootstrapScramCredentials(img *metadata.Image, creds []metadata.UserScramCredential) ([]metadata.Record, error) {
	var records []metadata.Record
	for i := range creds {
		cred := creds[i]
		if err := checkScramMechanism(cred.Name, cred.Mechanism); err != nil {
			return nil, err
		}
		if cred.Iterations < auth.ScramMinIterations || cred.Iterations > auth.ScramMaxIterations ||
			len(cred.Salt) == 0 || len(cred.StoredKey) == 0 || len(cred.ServerKey) == 0 {
			return nil, fmt.Errorf("%w: bootstrap credential of %q (%s)", ErrUnacceptableCredential, cred.Name, cred.Mechanism)
		}
		if _, ok := img.ScramCredential(cred.Name, cred.Mechanism); ok {
			continue
		}
		records = append(records, &cred)
	}
	return records, nil
}
