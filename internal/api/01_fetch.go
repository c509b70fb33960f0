package api

// SKELETON: Fetch v4–12; a helper replaces this file.

var fetchHandler = handler{key: 1, minVersion: 4, maxVersion: 12, serve: notImplemented}
