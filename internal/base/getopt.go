package base

import (
	"fmt"
	"sort"
	"strings"

	"github.com/urfave/cli/v2"
)

// Getopt rewrites a command line the way GNU getopt_long reads it, for a
// tool that must accept what scripts written for a C tool pass
// (inowait for inotifywait): options may follow operands
// ("inotifywait -mrq /data --format '%w%f' -e create"), short options
// cluster with an attached value ("-mrqecreate", "-t1"), a long option may be
// abbreviated to a unique prefix ("--mon"), and "--" ends the options.
// The result is what urfave/cli reads without surprises: every option
// spelled "--name" with its value as the next word, then "--", then the
// operands in their order. args[0] is the program name and is kept.
//
// The errors are getopt's: an unknown or ambiguous option, a missing
// value. One difference: a switch may be given a boolean value
// (--delete=false), as urfave/cli reads it.
func Getopt(flags []cli.Flag, args []string) ([]string, error) {
	if len(args) > 1 && args[len(args)-1] == "--generate-bash-completion" {
		return args, nil // the shell completion asks urfave/cli itself
	}
	type spec struct {
		name  string // the flag's first name, used in the output
		value bool   // takes a value
	}
	long := map[string]spec{}
	short := map[byte]spec{}
	add := func(names []string, takes bool) {
		s := spec{name: names[0], value: takes}
		for _, n := range names {
			if len(n) == 1 {
				short[n[0]] = s
			} else {
				long[n] = s
			}
		}
	}
	for _, f := range flags {
		takes := false
		if d, ok := f.(cli.DocGenerationFlag); ok {
			takes = d.TakesValue()
		}
		add(f.Names(), takes)
	}
	for _, builtin := range [][]string{{"help", "h"}, {"version"}, {"generate-bash-completion"}} {
		if _, ok := long[builtin[0]]; !ok {
			add(builtin, false)
		}
	}
	var longNames []string
	for n := range long {
		longNames = append(longNames, n)
	}
	sort.Strings(longNames)

	out := []string{args[0]}
	var operands []string
	rest := args[1:]
	for i := 0; i < len(rest); i++ {
		a := rest[i]
		switch {
		case a == "--":
			operands = append(operands, rest[i+1:]...)
			i = len(rest)
		case strings.HasPrefix(a, "--"):
			name, val, hasVal := strings.Cut(a[2:], "=")
			s, ok := long[name]
			if !ok {
				var cands []string
				for _, n := range longNames {
					if strings.HasPrefix(n, name) {
						cands = append(cands, n)
					}
				}
				// aliases of one flag are one candidate
				seen := map[string]bool{}
				var flagsHit []string
				for _, c := range cands {
					if !seen[long[c].name] {
						seen[long[c].name] = true
						flagsHit = append(flagsHit, c)
					}
				}
				switch len(flagsHit) {
				case 0:
					return nil, fmt.Errorf("unrecognized option '--%s'", name)
				case 1:
					s = long[flagsHit[0]]
				default:
					return nil, fmt.Errorf("option '--%s' is ambiguous; possibilities: --%s", name, strings.Join(flagsHit, " --"))
				}
			}
			switch {
			case !s.value && hasVal:
				// A switch given a value: --delete=false (urfave/cli's
				// boolean syntax, which getopt_long would refuse).
				out = append(out, "--"+s.name+"="+val)
				continue
			case s.value && !hasVal:
				if i+1 >= len(rest) {
					return nil, fmt.Errorf("option '--%s' requires an argument", s.name)
				}
				i++
				val = rest[i]
			}
			out = append(out, "--"+s.name)
			if s.value {
				out = append(out, val)
			}
		case strings.HasPrefix(a, "-") && len(a) > 1:
			for j := 1; j < len(a); j++ {
				s, ok := short[a[j]]
				if !ok {
					return nil, fmt.Errorf("invalid option -- '%c'", a[j])
				}
				out = append(out, "--"+s.name)
				if !s.value {
					continue
				}
				if j+1 < len(a) {
					out = append(out, a[j+1:]) // -t1, -ecreate
				} else if i+1 < len(rest) {
					i++
					out = append(out, rest[i])
				} else {
					return nil, fmt.Errorf("option requires an argument -- '%c'", a[j])
				}
				break
			}
		default:
			operands = append(operands, a) // "-" and "" are operands too
		}
	}
	out = append(out, "--")
	return append(out, operands...), nil
}
