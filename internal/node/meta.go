package node

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/sluicelog/sluice/internal/vfs"
)

// metaPropertiesFile identifies a log directory, as in Kafka's KRaft mode:
//
//	version=1
//	cluster.id=<22 characters of URL-safe base64, a random 128-bit UUID>
//	node.id=<int>
//
// It is written once, when the directory is first used, and checked on
// every start so that a directory is never served by the wrong node or
// mixed into the wrong cluster. Do not change the format.
const metaPropertiesFile = "meta.properties"

// metaProperties is a log directory's identity.
type metaProperties struct {
	ClusterID string
	NodeID    int32
}

// loadOrCreateMeta reads dir's meta.properties, or writes a new one with a
// fresh cluster id when the directory has none. A directory written for
// another node id is refused.
func loadOrCreateMeta(fsys vfs.FS, dir string, nodeID int32) (metaProperties, error) {
	path := filepath.Join(dir, metaPropertiesFile)
	data, err := vfs.ReadFile(fsys, path, 64<<10)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		meta := metaProperties{ClusterID: newClusterID(), NodeID: nodeID}
		if err := fsys.MkdirAll(dir, 0o755); err != nil {
			return meta, fmt.Errorf("log dir %s: %w", dir, err)
		}
		if err := vfs.WriteFileAtomic(fsys, path, meta.encode()); err != nil {
			return meta, fmt.Errorf("write %s: %w", path, err)
		}
		return meta, nil
	case err != nil:
		return metaProperties{}, fmt.Errorf("read %s: %w", path, err)
	}
	meta, err := parseMeta(data)
	if err != nil {
		return meta, fmt.Errorf("%s: %w", path, err)
	}
	// Kafka refuses this too: serving another node's replicas under this
	// id would hand the controller logs it believes live elsewhere.
	if meta.NodeID != nodeID {
		return meta, fmt.Errorf("%s belongs to node.id %d, but this node is node.id %d", path, meta.NodeID, nodeID)
	}
	return meta, nil
}

func (m metaProperties) encode() []byte {
	lines := []string{"version=1", "cluster.id=" + m.ClusterID, "node.id=" + strconv.Itoa(int(m.NodeID))}
	sort.Strings(lines)
	return []byte(strings.Join(lines, "\n") + "\n")
}

func parseMeta(data []byte) (metaProperties, error) {
	var m metaProperties
	kv := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return m, fmt.Errorf("line %q is not key=value", line)
		}
		kv[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	if kv["version"] != "1" {
		return m, fmt.Errorf("unsupported version %q", kv["version"])
	}
	id, err := strconv.ParseInt(kv["node.id"], 10, 32)
	if err != nil {
		return m, fmt.Errorf("node.id %q: %w", kv["node.id"], err)
	}
	if kv["cluster.id"] == "" {
		return m, errors.New("no cluster.id")
	}
	m.ClusterID, m.NodeID = kv["cluster.id"], int32(id)
	return m, nil
}

// newClusterID is a random UUID in Kafka's cluster id spelling.
func newClusterID() string {
	// 16 random bytes as 22 characters of URL-safe base64 without padding,
	// as kafka-storage.sh random-uuid prints them, so Kafka tools accept
	// the id. crypto/rand.Read cannot fail since Go 1.24.
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
