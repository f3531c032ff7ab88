package main

import (
	"io"
	"os"
	"path/filepath"
	"regexp"

	"github.com/urfave/cli/v2"

	"github.com/inopipe/inopipe/internal/base"
)

// Exit codes.
const (
	exitOK    = 0 // converted (warnings, if any, on stderr)
	exitError = 1 // unreadable or invalid confxml.xml
	exitUsage = 2 // bad command line
)

const description = `read a sersync confxml.xml (format 2.5) and print the equivalent
   /etc/inopipe/NAME.env for inopipe-run and the inopipe@ systemd unit, with
   the failreplay timer or cron lines for <failLog> and <crontab>. What has
   no equivalent is named in a warning on stderr.

   sersync2inopipe /opt/sersync/confxml.xml > /etc/inopipe/www.env

EXIT STATUS:
   0  converted (read the warnings)   1  unreadable or invalid file   2  bad usage`

var validName = regexp.MustCompile(`^[A-Za-z0-9_.@-]+$`)

func newApp() *cli.App {
	return &cli.App{
		Name:            "sersync2inopipe",
		Usage:           "convert a sersync confxml.xml to an inopipe configuration",
		UsageText:       "sersync2inopipe [options] confxml.xml > /etc/inopipe/NAME.env",
		Description:     description,
		Version:         base.Version,
		HideHelpCommand: true,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "name", Value: "sersync", Usage: "instance `NAME` (inopipe@NAME.service, /etc/inopipe/NAME.env)"},
			&cli.StringFlag{Name: "spool", Usage: "spool `DIR` for undelivered batches (default /var/spool/inopipe/NAME)"},
		},
		Action: func(c *cli.Context) error {
			if err := base.CheckArgs(c); err != nil {
				return err
			}
			if c.NArg() != 1 {
				return base.Usagef("give exactly one confxml.xml")
			}
			if !validName.MatchString(c.String("name")) {
				return base.Usagef("--name %q: use letters, digits, . _ @ - (it becomes a unit instance name)", c.String("name"))
			}
			spool := c.String("spool")
			if spool == "" {
				spool = "/var/spool/inopipe/" + c.String("name")
			}
			return run(c.Args().First(), c.String("name"), spool, c.App.Writer, c.App.ErrWriter)
		},
	}
}

func run(file, name, spool string, stdout, stderr io.Writer) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return base.Errorf(exitError, "%w", err)
	}
	c, err := parse(data)
	if err != nil {
		return base.Errorf(exitError, "%s: %w", file, err)
	}
	r, err := convert(c, name, spool)
	if err != nil {
		return base.Errorf(exitError, "%s: %w", file, err)
	}
	log := &base.Log{Prog: "sersync2inopipe", W: stderr}
	for _, w := range r.warnings {
		log.Warnf("%s", w)
	}
	render(stdout, r, name, filepath.Base(file))
	return nil
}
