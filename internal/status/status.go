// Package status keeps rpush's per-target figures and renders them for
// monitoring: a JSON document (as lsyncd's status file, but machine
// readable) or Prometheus text format for node_exporter's textfile
// collector. Files are replaced atomically (temp file, fsync, rename), so
// a reader never sees half a document.
package status

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/inopipe/inopipe/internal/atomicfile"
	"github.com/inopipe/inopipe/internal/event"
)

// Target is what is known about one target.
type Target struct {
	Target         string     `json:"target"`
	BatchesOK      int64      `json:"batches_ok"`
	BatchesFailed  int64      `json:"batches_failed"`
	BatchesSpooled int64      `json:"batches_spooled"`
	Paths          int64      `json:"paths"`
	Bytes          int64      `json:"bytes"`
	Retries        int64      `json:"retries"`
	LastSuccess    *time.Time `json:"last_success"`
	LastFailure    *time.Time `json:"last_failure"`
	LastError      string     `json:"last_error"`
	Pending        int        `json:"pending"`     // batches queued, running or waiting in the spool
	LagSeconds     float64    `json:"lag_seconds"` // age of the oldest pending batch (its first event; for a spooled one, when it was spooled); 0 when idle
}

// Doc is the whole status document.
type Doc struct {
	Instance     string    `json:"instance,omitempty"` // rpush --instance (inopipe-run: the env file's name)
	Updated      time.Time `json:"updated"`
	Started      time.Time `json:"started"`
	PID          int       `json:"pid"`
	Spool        string    `json:"spool"`
	SpoolEntries int       `json:"spool_entries"`     // undelivered batches waiting for failreplay (all targets)
	Quarantined  int       `json:"spool_quarantined"` // entries failreplay parked in quarantine/: they need the operator
	Targets      []Target  `json:"targets"`
}

// Tracker collects figures from rpush's workers. It is safe for
// concurrent use.
type Tracker struct {
	// Instance labels every metric, so that several pipelines can share
	// one node_exporter textfile directory ("" : no label).
	Instance string

	mu      sync.Mutex
	started time.Time
	order   []string
	targets map[string]*Target
	pending map[string]map[uint64]time.Time // target -> seq -> first event time
}

// New returns a tracker for targets, in the order given.
func New(now time.Time, targets []string) *Tracker {
	t := &Tracker{started: now, targets: map[string]*Target{}, pending: map[string]map[uint64]time.Time{}}
	for _, n := range targets {
		t.order = append(t.order, n)
		t.targets[n] = &Target{Target: n}
		t.pending[n] = map[uint64]time.Time{}
	}
	return t
}

// Queued records a batch handed to target's queue; first is the time of
// its first event (the batch's age is the lag it stands for).
func (t *Tracker) Queued(target string, seq uint64, first time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if p, ok := t.pending[target]; ok {
		p[seq] = first
	}
}

// Done records the outcome of one (batch, target): the result line rpush
// prints for it (Spooled set when it went to the spool).
func (t *Tracker) Done(r *event.Result, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s, found := t.targets[r.Target]
	if !found {
		return
	}
	delete(t.pending[r.Target], r.Seq)
	s.Paths += int64(r.Paths)
	s.Bytes += r.Bytes
	if r.Attempts > 1 {
		s.Retries += int64(r.Attempts - 1)
	}
	if r.OK {
		s.BatchesOK++
		s.LastSuccess = &now
		return
	}
	s.BatchesFailed++
	if r.Spooled != "" {
		s.BatchesSpooled++
	}
	s.LastFailure = &now
	s.LastError = r.Error
}

// Snapshot returns the document as of now, with the spool's entry and
// quarantine counts. spooled, when not nil, counts a target's batches in
// the spool and says when the oldest was spooled: they are pending too,
// and their age is lag (a target that is down must not look idle).
func (t *Tracker) Snapshot(now time.Time, spool string, spoolEntries, quarantined int, spooled func(target string) (int, time.Time)) Doc {
	t.mu.Lock()
	defer t.mu.Unlock()
	d := Doc{Instance: t.Instance, Updated: now, Started: t.started, PID: os.Getpid(), Spool: spool, SpoolEntries: spoolEntries, Quarantined: quarantined}
	for _, n := range t.order {
		s := *t.targets[n]
		s.Pending = len(t.pending[n])
		for _, first := range t.pending[n] {
			if !first.IsZero() {
				s.LagSeconds = math.Max(s.LagSeconds, now.Sub(first).Seconds())
			}
		}
		if spooled != nil {
			k, oldest := spooled(n)
			s.Pending += k
			if k > 0 && !oldest.IsZero() {
				s.LagSeconds = math.Max(s.LagSeconds, now.Sub(oldest).Seconds())
			}
		}
		s.LagSeconds = math.Round(s.LagSeconds*1000) / 1000
		d.Targets = append(d.Targets, s)
	}
	return d
}

// JSON renders d as an indented JSON document.
func JSON(d Doc) []byte {
	b, _ := json.MarshalIndent(d, "", "  ")
	return append(b, '\n')
}

// Prometheus renders d in the Prometheus text exposition format.
func Prometheus(d Doc) []byte {
	var b strings.Builder
	inst := "" // the instance label, first in every label set
	if d.Instance != "" {
		inst = "instance=" + label(d.Instance) + ","
	}
	metric := func(name, typ, help string, val func(Target) float64) {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
		for _, t := range d.Targets {
			fmt.Fprintf(&b, "%s{%starget=%s} %s\n", name, inst, label(t.Target), num(val(t)))
		}
	}
	ts := func(p *time.Time) float64 {
		if p == nil {
			return 0
		}
		return float64(p.UnixNano()) / 1e9
	}
	metric("inopipe_batches_ok_total", "counter", "Batches delivered to the target.", func(t Target) float64 { return float64(t.BatchesOK) })
	metric("inopipe_batches_failed_total", "counter", "Batches that failed for the target.", func(t Target) float64 { return float64(t.BatchesFailed) })
	metric("inopipe_batches_spooled_total", "counter", "Failed batches written to the spool.", func(t Target) float64 { return float64(t.BatchesSpooled) })
	metric("inopipe_paths_total", "counter", "Paths in delivered or attempted batches.", func(t Target) float64 { return float64(t.Paths) })
	metric("inopipe_bytes_total", "counter", "Bytes rsync reported sent.", func(t Target) float64 { return float64(t.Bytes) })
	metric("inopipe_retries_total", "counter", "rsync runs retried after a transient failure.", func(t Target) float64 { return float64(t.Retries) })
	metric("inopipe_last_success_timestamp_seconds", "gauge", "Time of the last delivered batch (0: none yet).", func(t Target) float64 { return ts(t.LastSuccess) })
	metric("inopipe_last_failure_timestamp_seconds", "gauge", "Time of the last failed batch (0: none).", func(t Target) float64 { return ts(t.LastFailure) })
	metric("inopipe_pending_batches", "gauge", "Batches queued or running for the target.", func(t Target) float64 { return float64(t.Pending) })
	metric("inopipe_lag_seconds", "gauge", "Age of the oldest pending batch's first event (0: idle).", func(t Target) float64 { return t.LagSeconds })
	fmt.Fprintf(&b, "# HELP inopipe_spool_entries Undelivered batches waiting for failreplay.\n# TYPE inopipe_spool_entries gauge\ninopipe_spool_entries{%sspool=%s} %d\n", inst, label(d.Spool), d.SpoolEntries)
	fmt.Fprintf(&b, "# HELP inopipe_spool_quarantined Spool entries parked in quarantine/ after failing for a lasting reason.\n# TYPE inopipe_spool_quarantined gauge\ninopipe_spool_quarantined{%sspool=%s} %d\n", inst, label(d.Spool), d.Quarantined)
	fmt.Fprintf(&b, "# HELP inopipe_status_updated_timestamp_seconds When rpush last wrote this file.\n# TYPE inopipe_status_updated_timestamp_seconds gauge\ninopipe_status_updated_timestamp_seconds{%sspool=%s} %s\n", inst, label(d.Spool), num(float64(d.Updated.UnixNano())/1e9))
	return []byte(b.String())
}

func num(f float64) string {
	if f == math.Trunc(f) && math.Abs(f) < 1e15 {
		return fmt.Sprintf("%d", int64(f))
	}
	return fmt.Sprintf("%.3f", f)
}

// label quotes a label value: backslash, double quote and newline escaped.
func label(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}

// Render picks the format by the file name: ".prom" is Prometheus text,
// anything else JSON.
func Render(path string, d Doc) []byte {
	if strings.HasSuffix(path, ".prom") {
		return Prometheus(d)
	}
	return JSON(d)
}

// WriteFile replaces path atomically with data (mode 0644: monitoring
// reads it; it holds no secrets, only target names and errors).
func WriteFile(path string, data []byte) error {
	if err := atomicfile.Write(path, data, 0o644); err != nil {
		return fmt.Errorf("status file %s: %w", path, err)
	}
	return nil
}
