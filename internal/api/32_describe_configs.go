package api

// SKELETON: DescribeConfigs v0–4; a helper replaces this file.

var describeConfigsHandler = handler{key: 32, minVersion: 0, maxVersion: 4, serve: notImplemented}
