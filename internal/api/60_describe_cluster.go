package api

// SKELETON: DescribeCluster v0–1; a helper replaces this file.

var describeClusterHandler = handler{key: 60, minVersion: 0, maxVersion: 1, serve: notImplemented}
