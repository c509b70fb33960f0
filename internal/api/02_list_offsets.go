package api

// SKELETON: ListOffsets v0–8; a helper replaces this file.

var listOffsetsHandler = handler{key: 2, minVersion: 0, maxVersion: 8, serve: notImplemented}
