package api

// SKELETON: the data-plane helper replaces this file.

// fetchSessionCache holds KIP-227 incremental fetch sessions.
type fetchSessionCache struct{}

func newFetchSessionCache(slots int) *fetchSessionCache { return &fetchSessionCache{} }
