package kraft

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
)

// Role is one of process.roles.
type Role string

const (
	RoleBroker     Role = "broker"
	RoleController Role = "controller"
)

// DefaultControllerPort is where controllers listen for each other when
// controller.quorum.voters names no port: 9093, the port Kafka's own KRaft
// examples give the CONTROLLER listener, next to 9092 for clients.
const DefaultControllerPort = 9093

// QuorumConfig is the part of the node configuration that places it in the
// metadata quorum, with Kafka's key names.
type QuorumConfig struct {
	NodeID           int32            // node.id
	Roles            []Role           // process.roles
	Voters           map[int32]string // controller.quorum.voters: id -> host:port
	MetadataLogDir   string           // metadata.log.dir
	ControllerListen string           // where this node listens for the quorum; defaults to its voter address
	// ControllerAdvertised is what a learner (a broker-only node) tells the
	// voters to dial back; voters are dialed at their voter addresses.
	ControllerAdvertised string
}

// IsController says whether the node votes in the quorum.
func (c *QuorumConfig) IsController() bool { return slices.Contains(c.Roles, RoleController) }

// ParseQuorumConfig reads node.id, process.roles, controller.quorum.voters
// and metadata.log.dir. With no voters it is a cluster of one: this node is
// the only voter, listening on localhost:9093 (a laptop's `sluice serve`).
func ParseQuorumConfig(props map[string]string) (QuorumConfig, error) {
	var c QuorumConfig
	id, err := strconv.ParseInt(orDefault(props["node.id"], "1"), 10, 32)
	if err != nil || id < 0 {
		return c, fmt.Errorf("node.id %q: want a non-negative integer", props["node.id"])
	}
	c.NodeID = int32(id)
	if c.Roles, err = ParseProcessRoles(orDefault(props["process.roles"], "broker,controller")); err != nil {
		return c, err
	}
	voters := props["controller.quorum.voters"]
	if voters == "" {
		voters = fmt.Sprintf("%d@localhost:%d", c.NodeID, DefaultControllerPort)
	}
	if c.Voters, err = ParseVoters(voters); err != nil {
		return c, err
	}
	if _, ok := c.Voters[c.NodeID]; c.IsController() && !ok {
		return c, fmt.Errorf("controller.quorum.voters %q: this node (node.id %d) has the controller role but is not a voter", voters, c.NodeID)
	}
	// Relative, like `sluice serve`'s ./data: a laptop run keeps everything
	// in the directory it was started from.
	c.MetadataLogDir = orDefault(props["metadata.log.dir"], "data/__cluster_metadata")
	// A voter listens where the others dial it. A learner has no voter
	// address; the node gives it a listener and ControllerAdvertised.
	c.ControllerListen = c.Voters[c.NodeID]
	return c, nil
}

// ParseProcessRoles reads process.roles: broker, controller, or both.
func ParseProcessRoles(s string) ([]Role, error) {
	var roles []Role
	for _, part := range strings.Split(s, ",") {
		role := Role(strings.TrimSpace(part))
		if role != RoleBroker && role != RoleController {
			return nil, fmt.Errorf("process.roles %q: unknown role %q (want broker, controller or both)", s, role)
		}
		if slices.Contains(roles, role) {
			return nil, fmt.Errorf("process.roles %q: %s given twice", s, role)
		}
		roles = append(roles, role)
	}
	return roles, nil
}

// ParseVoters reads controller.quorum.voters: "1@host:9093,2@host:9093".
func ParseVoters(s string) (map[int32]string, error) {
	voters := map[int32]string{}
	for _, part := range strings.Split(s, ",") {
		idText, addr, ok := strings.Cut(strings.TrimSpace(part), "@")
		id, err := strconv.ParseInt(idText, 10, 32)
		if !ok || err != nil || id < 0 {
			return nil, fmt.Errorf("controller.quorum.voters %q: %q is not id@host:port", s, part)
		}
		host, port, err := net.SplitHostPort(addr)
		if err != nil || host == "" {
			return nil, fmt.Errorf("controller.quorum.voters %q: %q: want host:port", s, addr)
		}
		// Port 0 would let a voter listen on any port, but no other voter
		// could then dial it at the address written here.
		if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
			return nil, fmt.Errorf("controller.quorum.voters %q: bad port in %q", s, addr)
		}
		if _, dup := voters[int32(id)]; dup {
			return nil, fmt.Errorf("controller.quorum.voters %q: node %d given twice", s, id)
		}
		voters[int32(id)] = addr
	}
	return voters, nil
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
