package api

// SKELETON: OffsetForLeaderEpoch v2–4; a helper replaces this file.

var offsetForLeaderEpochHandler = handler{key: 23, minVersion: 2, maxVersion: 4, serve: notImplemented}
