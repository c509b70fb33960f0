package api

// SKELETON: DeleteTopics v0–6; a helper replaces this file.

var deleteTopicsHandler = handler{key: 20, minVersion: 0, maxVersion: 6, serve: notImplemented}
