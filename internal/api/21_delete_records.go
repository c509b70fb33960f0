package api

// SKELETON: DeleteRecords v0–2; a helper replaces this file.

var deleteRecordsHandler = handler{key: 21, minVersion: 0, maxVersion: 2, serve: notImplemented}
