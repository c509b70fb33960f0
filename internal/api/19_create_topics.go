package api

// SKELETON: CreateTopics v0–7; a helper replaces this file.

var createTopicsHandler = handler{key: 19, minVersion: 0, maxVersion: 7, serve: notImplemented}
