package controller

import (
	"errors"
	"testing"

	"github.com/sluicelog/sluice/internal/auth"
	"github.com/sluicelog/sluice/internal/metadata"
)

func TestControllerScramCredentials(t *testing.T) {
	c := New(DefaultConfig(), nil)
	salted, err := auth.SaltPassword(auth.MechanismScramSHA256, "secret", []byte("salt"), 4096)
	if err != nil {
		t.Fatal(err)
	}
	up := ScramUpsertion{Name: "alice", Mechanism: metadata.ScramSHA256, Iterations: 4096, Salt: []byte("salt"), SaltedPassword: salted}
	records, resp := c.AlterUserScramCredentials(metadata.EmptyImage(), AlterUserScramCredentialsRequest{
		Upsertions: []ScramUpsertion{up, {Name: "bob", Mechanism: metadata.ScramSHA512, Iterations: 100, Salt: []byte("s"), SaltedPassword: []byte("p")}},
	})
	if len(resp.Results) != 2 || resp.Results[0].Err != nil || !errors.Is(resp.Results[1].Err, ErrUnacceptableCredential) {
		t.Fatalf("results = %+v, want alice ok and bob's 100 iterations refused", resp.Results)
	}
	if len(records) != 1 {
		t.Fatalf("records = %+v, want alice's only", records)
	}
	d := metadata.NewDelta(metadata.EmptyImage())
	if err := d.Replay(records[0]); err != nil {
		t.Fatal(err)
	}
	img := d.Apply(0)
	cred, ok := img.ScramCredential("alice", metadata.ScramSHA256)
	if !ok || !auth.CheckScramPassword(auth.MechanismScramSHA256, "secret", cred.Salt, cred.StoredKey, int(cred.Iterations)) {
		t.Fatalf("stored credential %+v does not check the password", cred)
	}
	if auth.CheckScramPassword(auth.MechanismScramSHA256, "wrong", cred.Salt, cred.StoredKey, int(cred.Iterations)) {
		t.Fatal("a wrong password checks")
	}

	_, resp = c.AlterUserScramCredentials(img, AlterUserScramCredentialsRequest{
		Deletions:  []ScramDeletion{{Name: "alice", Mechanism: metadata.ScramSHA256}, {Name: "carol", Mechanism: metadata.ScramSHA256}},
		Upsertions: []ScramUpsertion{up},
	})
	if !errors.Is(resp.Results[0].Err, ErrDuplicateResource) || !errors.Is(resp.Results[1].Err, ErrResourceNotFound) {
		t.Fatalf("results = %+v, want alice duplicate, carol not found", resp.Results)
	}
}
