package node

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"time"

	"github.com/sluicelog/sluice/internal/kraft"
	"github.com/sluicelog/sluice/internal/metadata"
	"github.com/sluicelog/sluice/internal/vfs"
)

// BootstrapCredentialsFile, in the data dir (log.dirs), holds SCRAM
// credentials created offline with `sluice user create --data-dir` before
// the node ever ran, as Kafka's `kafka-storage format --add-scram` puts
// them in its bootstrap checkpoint. It holds derived keys only (salt,
// iterations, stored and server key), never a password.
//
// Format (must not change): metadata.AppendRecords of UserScramCredential
// records.
const BootstrapCredentialsFile = "scram-credentials.bootstrap"

// maxBootstrapBytes bounds the file: a credential is about 200 bytes.
const maxBootstrapBytes = 1 << 20

// ReadBootstrapCredentials reads the data dir's bootstrap credentials;
// none when the file does not exist.
func ReadBootstrapCredentials(fsys vfs.FS, dataDir string) ([]metadata.UserScramCredential, error) {
	path := filepath.Join(dataDir, BootstrapCredentialsFile)
	data, err := vfs.ReadFile(fsys, path, maxBootstrapBytes)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("bootstrap credentials: %w", err)
	}
	records, err := metadata.DecodeRecords(data)
	if err != nil {
		return nil, fmt.Errorf("bootstrap credentials %s: %w", path, err)
	}
	creds := make([]metadata.UserScramCredential, 0, len(records))
	for _, r := range records {
		c, ok := r.(*metadata.UserScramCredential)
		if !ok {
			return nil, fmt.Errorf("bootstrap credentials %s: a %T record", path, r)
		}
		creds = append(creds, *c)
	}
	return creds, nil
}

// AddBootstrapCredential adds cred to the data dir's bootstrap file,
// replacing the user's earlier one for the same mechanism. The file is
// replaced atomically.
func AddBootstrapCredential(fsys vfs.FS, dataDir string, cred metadata.UserScramCredential) error {
	creds, err := ReadBootstrapCredentials(fsys, dataDir)
	if err != nil {
		return err
	}
	records := []metadata.Record{&cred}
	for i := range creds {
		if creds[i].Name != cred.Name || creds[i].Mechanism != cred.Mechanism {
			records = append(records, &creds[i])
		}
	}
	if err := fsys.MkdirAll(dataDir, 0o755); err != nil {
		return fmt.Errorf("bootstrap credentials: %w", err)
	}
	return vfs.WriteFileAtomic(fsys, filepath.Join(dataDir, BootstrapCredentialsFile), metadata.AppendRecords(nil, records))
}

// applyBootstrapCredentials submits the data dir's offline credentials to
// the controller, which adds those the cluster does not have yet, then
// removes the file: a restart never reads it again, and a credential
// changed online since is kept. It waits for the quorum as registration
// does.
func (n *Node) applyBootstrapCredentials(ctx context.Context) error {
	creds, err := ReadBootstrapCredentials(n.opts.FS, n.opts.Config.LogDir())
	if err != nil || len(creds) == 0 {
		return err
	}
	for {
		attempt, cancel := context.WithTimeout(ctx, quorumWaitLogInterval)
		resp, err := n.cp.Submit(attempt, kraft.BootstrapScramCredentials{Credentials: creds})
		cancel()
		if err == nil {
			out := resp.(kraft.BootstrapScramCredentialsResponse)
			if out.Err != nil {
				return fmt.Errorf("bootstrap credentials: %w", out.Err)
			}
			n.log.Info("bootstrap SCRAM credentials applied", "new", out.Added, "in_file", len(creds))
			break
		}
		if ctx.Err() != nil {
			return fmt.Errorf("bootstrap credentials: %w", err)
		}
		n.log.Info("waiting for the controller quorum to apply bootstrap credentials", "err", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("bootstrap credentials: %w", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
	if err := n.opts.FS.Remove(filepath.Join(n.opts.Config.LogDir(), BootstrapCredentialsFile)); err != nil {
		return fmt.Errorf("bootstrap credentials applied, but the file stays: %w", err)
	}
	return nil
}
