package node

import (
	"fmt"
	"net"
	"slices"
	"strconv"
)

// IsBroker says whether this node serves Kafka clients: process.roles
// includes broker. A controller-only node, as in Kafka's KRaft, opens no
// client listener, hosts no partitions and never registers as a broker;
// Addr is nil on it.
func (n *Node) IsBroker() bool { return isBroker(n.opts.Config.List("process.roles")) }

func isBroker(roles []string) bool { return slices.Contains(roles, "broker") }

// learnerListener binds the quorum listener of a broker-only node and
// works out the address the voters are told to dial back. The voters'
// addresses are fixed by controller.quorum.voters, but a learner is not in
// that list, so it announces itself.
//
// controller.listener sets where it binds; empty means a free port on the
// client listener's interface, which is where this machine is known to be
// reachable. The advertised host is the bound host, or, for an
// all-interfaces bind, the host clients are told (advertised.listeners),
// since a voter on another machine cannot dial 0.0.0.0.
func (n *Node) learnerListener() (net.Listener, string, error) {
	cfg := n.opts.Config
	host, port, err := cfg.Listener()
	if err != nil {
		return nil, "", err
	}
	port = 0
	if cfg.String("controller.listener") != "" {
		if host, port, err = cfg.ControllerListener(); err != nil {
			return nil, "", err
		}
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return nil, "", fmt.Errorf("controller.listener (the quorum listener of a broker-only node): %w", err)
	}
	advertisedHost := host
	if isAllInterfaces(host) {
		if advertisedHost, _, err = cfg.AdvertisedListener(); err != nil {
			ln.Close()
			return nil, "", err
		}
	}
	boundPort := ln.Addr().(*net.TCPAddr).Port
	return ln, net.JoinHostPort(advertisedHost, strconv.Itoa(boundPort)), nil
}

func isAllInterfaces(host string) bool {
	return host == "" || host == "0.0.0.0" || host == "::"
}
