package rsync

import "strings"

// rsync's exit codes (rsync's errcode.h), named so nobody writes 5888.
const (
	ExitOK          = 0
	ExitSyntax      = 1  // syntax or usage error (also: password file mode)
	ExitProtocol    = 2  // protocol incompatibility (also #910: "invalid file mode 00")
	ExitFileSelect  = 3  // errors selecting input/output files, dirs
	ExitUnsupported = 4  // requested action not supported
	ExitStartClient = 5  // error starting client-server protocol (auth, module, max connections)
	ExitSocketIO    = 10 // error in socket I/O (daemon down)
	ExitFileIO      = 11 // error in file I/O (receiver disk full)
	ExitStreamIO    = 12 // error in rsync protocol data stream
	ExitSignal      = 20 // received SIGUSR1 or SIGINT (killed)
	ExitPartial     = 23 // partial transfer due to error
	ExitVanished    = 24 // partial transfer due to vanished source files
	ExitDelLimit    = 25 // --max-delete limit stopped deletions
	ExitTimeout     = 30 // timeout in data send/receive
	ExitConTimeout  = 35 // timeout waiting for daemon connection
	ExitSSH         = 255
	// ExitNotRun is used for a run that never started (missing binary).
	ExitNotRun = -1
)

// Class is what to do after a run.
type Class int

// Classes.
const (
	Done       Class = iota // success (24 after normalization: the file changed under us; the next event syncs it)
	Retry                   // transient: retry with backoff, then spool
	FilterMode              // the receiver rejects --delete-missing-args: switch this target to filter mode, retry at once
	Spool                   // will not get better by retrying now: spool and report
	Dangerous               // stop this source: the safety gate refused its root (never an rsync exit code)
	Config                  // the binary is missing or cannot run: this target spools from now on
)

func (c Class) String() string {
	return [...]string{"done", "retry", "filter-mode", "spool", "dangerous", "config"}[c]
}

// Classify maps an exit code and rsync's stderr to a Class.
func Classify(code int, stderr string) Class {
	switch code {
	case ExitOK, ExitVanished:
		return Done
	case ExitSocketIO, ExitStreamIO, ExitTimeout, ExitConTimeout, ExitSSH:
		return Retry
	case ExitStartClient:
		if strings.Contains(stderr, "max connections") {
			return Retry
		}
		return Spool
	case ExitProtocol:
		if strings.Contains(stderr, "invalid file mode 00") {
			return FilterMode
		}
		return Spool
	case ExitFileSelect:
		// Errors selecting input/output files: as often the target's
		// side (its destination is a file, a module path is missing)
		// as the source's. Source-side danger is the gate's to find,
		// before the run; this only spools for this target.
		return Spool
	case ExitNotRun:
		return Config
	}
	return Spool
}

// Refusal reports whether a failure is the receiver refusing the
// configuration itself (a wrong password, an unknown module, a refused
// option, a syntax error): no retry and no replay will cure it, the
// operator must act.
func Refusal(code int, stderr string) bool {
	switch code {
	case ExitSyntax, ExitUnsupported:
		return true
	case ExitStartClient:
		return !strings.Contains(stderr, "max connections")
	}
	return false
}

// Hint is advice for the operator on a failure rsync's own words do not
// explain, or "".
func Hint(code int, stderr string) string {
	switch {
	case code == ExitUnsupported && strings.Contains(stderr, "refuse --delete"):
		return "the daemon's `refuse options` forbid deletions: lift them, or run rpush --delete=false for this target"
	case code == ExitStartClient && strings.Contains(stderr, "auth failed"):
		return "the daemon refused the password: check --password-file (PASSWORD_FILE) or RSYNC_PASSWORD against the module's secrets file and auth users"
	case code == ExitStartClient && strings.Contains(stderr, "Unknown module"):
		return "no such module on that daemon: `rsync HOST::` lists the modules it offers"
	}
	return ""
}
