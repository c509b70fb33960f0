package metadata

import "testing"

func scramRecord(user string, m ScramMechanism, iterations int32) *UserScramCredential {
	return &UserScramCredential{Name: user, Mechanism: m, Salt: []byte("s-" + user), StoredKey: []byte{1}, ServerKey: []byte{2}, Iterations: iterations}
}

func TestScramCredentialsReplay(t *testing.T) {
	img := apply(t, EmptyImage(),
		scramRecord("bob", ScramSHA512, 4096),
		scramRecord("alice", ScramSHA256, 4096),
		scramRecord("alice", ScramSHA256, 8192), // replaces
		scramRecord("alice", ScramSHA512, 4096),
	)
	c, ok := img.ScramCredential("alice", ScramSHA256)
	require(t, ok && c.Iterations == 8192, "alice SCRAM-SHA-256 = %+v %v, want the replacement", c, ok)
	users := img.ScramUsers()
	require(t, len(users) == 2 && users[0].Name == "alice" && len(users[0].Mechanisms) == 2 && users[1].Name == "bob",
		"ScramUsers = %+v", users)

	img = apply(t, img, &RemoveUserScramCredential{Name: "alice", Mechanism: ScramSHA256})
	_, ok = img.ScramCredential("alice", ScramSHA256)
	require(t, !ok, "removed credential still there")
	_, ok = img.ScramCredential("alice", ScramSHA512)
	require(t, ok, "the other mechanism's credential went too")

	_, err := replayErr(t, img, &RemoveUserScramCredential{Name: "alice", Mechanism: ScramSHA256})
	requireErrorIs(t, err, ErrInvalidRecord)
	_, err = replayErr(t, img, &UserScramCredential{Name: "carol", Mechanism: ScramSHA256, Iterations: 4096})
	requireErrorIs(t, err, ErrInvalidRecord)

	// A snapshot keeps the credentials: the image's records rebuild it.
	rebuilt := NewDelta(EmptyImage())
	for _, r := range img.Records() {
		requireNoError(t, rebuilt.Replay(r))
	}
	requireSameImage(t, rebuilt.Apply(img.Offset()), img)
}
