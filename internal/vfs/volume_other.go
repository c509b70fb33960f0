//go:build !linux

package vfs

import "errors"

// VolumeUsage is not wired up outside Linux (Sluice's storage guarantees are
// stated for Linux); callers report the sizes as unknown.
func (osFS) VolumeUsage(string) (VolumeUsage, error) {
	return VolumeUsage{}, errors.ErrUnsupported
}
