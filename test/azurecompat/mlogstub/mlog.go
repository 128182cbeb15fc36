// Package mlog stands in for monis.app/mlog in the test-only azurecompat module: the Azure webhook's pkg/webhook
// imports it for logging only (mlog.New().WithName().WithValues(), Logger.Error, mlog.Enabled for the proxy's log
// level). Every message is discarded; Enabled reports the info level, the real library's default.
package mlog

// LogLevel is a verbosity level, named as the real library names them.
type LogLevel string

// The levels pkg/webhook iterates over (currentLogLevel).
const (
	LevelWarning LogLevel = "warning"
	LevelInfo    LogLevel = "info"
	LevelDebug   LogLevel = "debug"
	LevelTrace   LogLevel = "trace"
	LevelAll     LogLevel = "all"
)

// Enabled reports whether level is logged: warning and info, as with the real library's default level.
func Enabled(level LogLevel) bool { return level == LevelWarning || level == LevelInfo }

// Logger discards everything.
type Logger struct{}

// New returns a Logger.
func New() Logger { return Logger{} }

// WithName returns the logger unchanged.
func (l Logger) WithName(string) Logger { return l }

// WithValues returns the logger unchanged.
func (l Logger) WithValues(...any) Logger { return l }

// Error discards msg and err (the real library's argument order: message first).
func (Logger) Error(string, error, ...any) {}

// Info discards msg.
func (Logger) Info(string, ...any) {}
