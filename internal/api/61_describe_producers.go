package api

// SKELETON: DescribeProducers v0–0; a helper replaces this file.

var describeProducersHandler = handler{key: 61, minVersion: 0, maxVersion: 0, serve: notImplemented}
