package app

import (
	goflag "flag"

	"github.com/go-logr/logr"
	"github.com/spf13/pflag"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
)

type logFlags struct {
	opts  zap.Options
	flags *pflag.FlagSet
}

// bindLogFlags exposes controller-runtime's zap flags (--zap-log-level, --zap-encoder, ...). Production defaults:
// JSON, info level, no stack traces below error.
func bindLogFlags() *logFlags {
	l := &logFlags{opts: zap.Options{Development: false}}
	gfs := goflag.NewFlagSet("logging", goflag.ContinueOnError)
	l.opts.BindFlags(gfs)
	l.flags = pflag.NewFlagSet("logging", pflag.ContinueOnError)
	l.flags.AddGoFlagSet(gfs)
	return l
}

// setupLogger installs the process logger. controller-runtime keeps every per-request logger until a logger is set,
// so this runs before any server starts.
func setupLogger(l *logFlags) logr.Logger {
	log := zap.New(zap.UseFlagOptions(&l.opts))
	ctrl.SetLogger(log)
	return log
}
