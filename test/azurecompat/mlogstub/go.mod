// A local stand-in for monis.app/mlog, which the module proxy refuses. The Azure webhook's pkg/webhook uses it only to
// log; this module offers exactly the API that package compiles against and discards every message.
module monis.app/mlog

go 1.26.0
