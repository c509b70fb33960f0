package api

// SKELETON: AlterConfigs v0–2; a helper replaces this file.

var alterConfigsHandler = handler{key: 33, minVersion: 0, maxVersion: 2, serve: notImplemented}
