package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/inopipe/inopipe/internal/base"
	"github.com/inopipe/inopipe/internal/runconfig"
	"github.com/inopipe/inopipe/internal/status"
)

// showStatus is --status: the config's STATUS_FILE (rpush's JSON) as a
// table for a person; a Prometheus file is printed as it is.
func showStatus(cfg *runconfig.Config, now time.Time, w io.Writer) error {
	if cfg.Status == "" {
		return base.Errorf(base.ExitUsage, "%s sets no STATUS_FILE", cfg.File)
	}
	b, err := os.ReadFile(cfg.Status)
	if err != nil {
		return (&base.Error{Code: base.ExitError, Err: err}).WithHint("is the pipeline running? (systemctl status inopipe@NAME)")
	}
	if strings.HasSuffix(cfg.Status, ".prom") {
		_, err := w.Write(b)
		return err
	}
	var d status.Doc
	if err := json.Unmarshal(b, &d); err != nil {
		return base.Errorf(base.ExitError, "%s: %w", cfg.Status, err)
	}
	ago := func(t time.Time) string {
		return fmt.Sprintf("%s (%s ago)", t.Format(time.RFC3339), now.Sub(t).Round(time.Second))
	}
	fmt.Fprintf(w, "%s: updated %s by rpush pid %d\n", cfg.Source, ago(d.Updated), d.PID)
	fmt.Fprintf(w, "spool %s: %d entries waiting, %d quarantined\n\n", d.Spool, d.SpoolEntries, d.Quarantined)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TARGET\tDELIVERED\tFAILED\tSPOOLED\tPENDING\tLAG\tLAST SUCCESS\tLAST ERROR")
	for _, t := range d.Targets {
		last := "never"
		if t.LastSuccess != nil {
			last = ago(*t.LastSuccess)
		}
		lastErr := "-"
		if t.LastFailure != nil && (t.LastSuccess == nil || t.LastFailure.After(*t.LastSuccess)) {
			lastErr = t.LastError
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%.1fs\t%s\t%s\n", t.Target, t.BatchesOK, t.BatchesFailed, t.BatchesSpooled, t.Pending, t.LagSeconds, last, lastErr)
	}
	return tw.Flush()
}
