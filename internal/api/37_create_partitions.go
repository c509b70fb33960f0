package api

// SKELETON: CreatePartitions v0–3; a helper replaces this file.

var createPartitionsHandler = handler{key: 37, minVersion: 0, maxVersion: 3, serve: notImplemented}
