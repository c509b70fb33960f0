package config

import (
	"errors"
	"maps"
	"testing"
)

func TestConnectionsPerIPOverrides(t *testing.T) {
	got, err := ConnectionsPerIPOverrides(" 10.0.0.1:200, ::1:5,[fe80::1]:0,::ffff:10.0.0.2:7")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"10.0.0.1": 200, "::1": 5, "fe80::1": 0, "10.0.0.2": 7}
	if !maps.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for _, bad := range []string{"10.0.0.1", "host.example:5", "10.0.0.1:-1", "10.0.0.1:x", ":5"} {
		if _, err := ConnectionsPerIPOverrides(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestBrokerLoadConnectionLimits(t *testing.T) {
	for _, tc := range []struct {
		sets []string
		ok   bool
	}{
		{[]string{"max.connections.per.ip=5", "max.connections.per.ip.overrides=127.0.0.1:50"}, true},
		{[]string{"max.connections.per.ip=0", "max.connections.per.ip.overrides=127.0.0.1:50"}, true},
		{[]string{"max.connections.per.ip=0"}, false},
		{[]string{"max.connections.per.ip.overrides=localhost:5"}, false},
		{[]string{"quota.window.num=0"}, false},
	} {
		_, _, err := Load(memWithFile(t, ""), Sources{File: confPath, Sets: tc.sets})
		if tc.ok != (err == nil) || (err != nil && !errors.Is(err, ErrInvalidConfigValue)) {
			t.Errorf("%v: err %v", tc.sets, err)
		}
	}
}
