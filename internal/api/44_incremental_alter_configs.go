package api

// SKELETON: IncrementalAlterConfigs v0–1; a helper replaces this file.

var incrementalAlterConfigsHandler = handler{key: 44, minVersion: 0, maxVersion: 1, serve: notImplemented}
