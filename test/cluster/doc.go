// Package cluster holds Sluice's cluster tests (placeholder, see below).
package cluster
