package raft

import (
	"context"
	"fmt"
	"log/slog"
)

// raftLogger sends etcd Raft's log lines to slog. Raft calls Panic when an
// invariant breaks and Fatal when it cannot go on; both panic here, and the
// node's driver turns the panic into a stopped node rather than a dead
// process.
type raftLogger struct{ logger *slog.Logger }

func (l raftLogger) log(level slog.Level, msg string) {
	l.logger.Log(context.Background(), level, msg, "component", "raft")
}

func (l raftLogger) Debug(v ...any) { l.log(slog.LevelDebug, fmt.Sprint(v...)) }
func (l raftLogger) Debugf(format string, v ...any) {
	l.log(slog.LevelDebug, fmt.Sprintf(format, v...))
}

// Raft's Info lines (elections, term changes) go to Debug: on a cluster of
// one they are a dozen lines of noise at every start, and a leader change
// that matters shows up in internal/kraft's own logs.
func (l raftLogger) Info(v ...any)                 { l.log(slog.LevelDebug, fmt.Sprint(v...)) }
func (l raftLogger) Infof(format string, v ...any) { l.log(slog.LevelDebug, fmt.Sprintf(format, v...)) }
func (l raftLogger) Warning(v ...any)              { l.log(slog.LevelWarn, fmt.Sprint(v...)) }
func (l raftLogger) Warningf(format string, v ...any) {
	l.log(slog.LevelWarn, fmt.Sprintf(format, v...))
}
func (l raftLogger) Error(v ...any) { l.log(slog.LevelError, fmt.Sprint(v...)) }
func (l raftLogger) Errorf(format string, v ...any) {
	l.log(slog.LevelError, fmt.Sprintf(format, v...))
}
func (l raftLogger) Fatal(v ...any)                 { l.fatal(fmt.Sprint(v...)) }
func (l raftLogger) Fatalf(format string, v ...any) { l.fatal(fmt.Sprintf(format, v...)) }
func (l raftLogger) Panic(v ...any)                 { l.fatal(fmt.Sprint(v...)) }
func (l raftLogger) Panicf(format string, v ...any) { l.fatal(fmt.Sprintf(format, v...)) }

func (l raftLogger) fatal(msg string) {
	l.log(slog.LevelError, msg)
	panic("raft: " + msg)
}
