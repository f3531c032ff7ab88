package base

import (
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

func TestGetopt(t *testing.T) {
	flags := []cli.Flag{
		&cli.BoolFlag{Name: "monitor", Aliases: []string{"m"}},
		&cli.BoolFlag{Name: "recursive", Aliases: []string{"r"}},
		&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}},
		&cli.StringSliceFlag{Name: "event", Aliases: []string{"e"}},
		&cli.IntFlag{Name: "timeout", Aliases: []string{"t"}},
		&cli.StringFlag{Name: "format"},
		&cli.StringFlag{Name: "timefmt"},
		&cli.StringSliceFlag{Name: "exclude"},
		&cli.StringSliceFlag{Name: "excludei"},
	}
	for _, c := range []struct {
		name string
		in   string // words separated by |
		want string
		err  string
	}{
		{"options after the path (the tutorials)", "/data|--timefmt|%d/%m/%y %H:%M|--format|%T %w%f%e|-e|close_write,delete",
			"--timefmt|%d/%m/%y %H:%M|--format|%T %w%f%e|--event|close_write,delete|--|/data", ""},
		{"cluster", "-mrq|/data", "--monitor|--recursive|--quiet|--|/data", ""},
		{"attached value", "-t1|/d", "--timeout|1|--|/d", ""},
		{"cluster ending in a valued option with its value attached", "-mrqecreate,delete|/d", "--monitor|--recursive|--quiet|--event|create,delete|--|/d", ""},
		{"cluster ending in a valued option, value next", "-mqqe|create|/d", "--monitor|--quiet|--quiet|--event|create|--|/d", ""},
		{"long with =", "--format=%w|/d", "--format|%w|--|/d", ""},
		{"unique prefix", "--mon|/d", "--monitor|--|/d", ""},
		{"exact name beats a longer one", "--exclude|x|/d", "--exclude|x|--|/d", ""},
		{"-- ends options", "-m|--|-weird|/d", "--monitor|--|-weird|/d", ""},
		{"- and empty are operands", "-|", "--|-|", ""},
		{"help", "--help", "--help|--", ""},
		{"typo -format", "-format|x|/d", "", "invalid option -- 'f'"},
		{"ambiguous", "--ex|x", "", "option '--ex' is ambiguous; possibilities: --exclude --excludei"},
		{"unknown long", "--nope", "", "unrecognized option '--nope'"},
		{"missing value", "/d|--format", "", "option '--format' requires an argument"},
		{"missing short value", "-t", "", "option requires an argument -- 't'"},
		{"a switch turned off", "--mon=false|/d", "--monitor=false|--|/d", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := Getopt(flags, append([]string{"prog"}, strings.Split(c.in, "|")...))
			if c.err != "" {
				if err == nil || err.Error() != c.err {
					t.Fatalf("error %v, want %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if g := strings.Join(got[1:], "|"); g != c.want {
				t.Fatalf("got  %s\nwant %s", g, c.want)
			}
		})
	}
}
