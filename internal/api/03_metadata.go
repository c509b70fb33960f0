package api

// SKELETON: Metadata v0–12; a helper replaces this file.

var metadataHandler = handler{key: 3, minVersion: 0, maxVersion: 12, serve: notImplemented}
