package main

import (
	"io"
	"os"
	"path/filepath"
	"regexp"

	"github.com/urfave/cli/v2"

	"github.com/inopipe/inopipe/internal/base"
)

const description = `read a sersync confxml.xml (format 2.5) and print the equivalent
   /etc/inopipe/NAME.env for inopipe-run and the inopipe@ systemd unit, with
   the failreplay timer or cron lines for <failLog> and <crontab>. What has
   no equivalent is named in a warning on stderr.

   sersync2inopipe /opt/sersync/confxml.xml > /etc/inopipe/www.env`

var validName = regexp.MustCompile(`^[A-Za-z0-9_.@-]+$`)

// exitStatus is what each exit code means for sersync2inopipe (codes: base).
var exitStatus = []base.Status{
	{Code: base.ExitOK, Meaning: "converted (read the warnings)"},
	{Code: base.ExitError, Meaning: "an unreadable or invalid file"},
	{Code: base.ExitUsage, Meaning: "bad usage"},
}

func newApp() *cli.App {
	return base.WithExitStatus(exitStatus, &cli.App{
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
	})
}

func run(file, name, spool string, stdout, stderr io.Writer) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return base.Errorf(base.ExitError, "%w", err)
	}
	c, err := parse(data)
	if err != nil {
		return base.Errorf(base.ExitError, "%s: %w", file, err)
	}
	r, err := convert(c, name, spool)
	if err != nil {
		return base.Errorf(base.ExitError, "%s: %w", file, err)
	}
	log := base.NewLog("sersync2inopipe", stderr)
	for _, w := range r.warnings {
		log.Warnf("%s", w)
	}
	render(stdout, r, name, filepath.Base(file))
	return nil
}
