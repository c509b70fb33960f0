package api

// SKELETON: InitProducerId v0–5; a helper replaces this file.

var initProducerIDHandler = handler{key: 22, minVersion: 0, maxVersion: 5, serve: notImplemented}
