package api

// SKELETON: Produce v0–12; a helper replaces this file.

var produceHandler = handler{key: 0, minVersion: 0, maxVersion: 12, serve: notImplemented}
