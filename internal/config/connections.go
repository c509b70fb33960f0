package config

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// ConnectionsPerIPOverrides parses max.connections.per.ip.overrides:
// "ip:count" pairs separated by commas. The count follows the last colon,
// so IPv6 addresses need no brackets ("::1:5"), though brackets are
// accepted ("[::1]:5"). Addresses are keyed as netip prints them.
func ConnectionsPerIPOverrides(value string) (map[string]int, error) {
	overrides := map[string]int{}
	for _, item := range strings.Split(value, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		i := strings.LastIndexByte(item, ':')
		if i <= 0 {
			return nil, fmt.Errorf("%q: want ip:count", item)
		}
		host := strings.TrimSuffix(strings.TrimPrefix(item[:i], "["), "]")
		addr, err := netip.ParseAddr(host)
		if err != nil {
			return nil, fmt.Errorf("%q: %q is not an IP address (host names are not resolved)", item, host)
		}
		n, err := strconv.Atoi(strings.TrimSpace(item[i+1:]))
		if err != nil || n < 0 {
			return nil, fmt.Errorf("%q: the count must be a whole number of at least 0", item)
		}
		overrides[addr.Unmap().String()] = n
	}
	return overrides, nil
}

// checkConnectionLimits checks the overrides' form and Kafka's rule that
// max.connections.per.ip=0 needs overrides: otherwise no client could
// ever connect.
func (b *Broker) checkConnectionLimits() error {
	overrides, err := ConnectionsPerIPOverrides(b.values[MaxConnectionsPerIPOverrides])
	if err != nil {
		return b.invalid(MaxConnectionsPerIPOverrides, "ip:count pairs separated by commas ("+err.Error()+")")
	}
	if b.Int32(MaxConnectionsPerIP) == 0 && len(overrides) == 0 {
		return b.invalid(MaxConnectionsPerIP, "above 0, or max.connections.per.ip.overrides set: with 0 and no overrides no client could connect")
	}
	return nil
}
