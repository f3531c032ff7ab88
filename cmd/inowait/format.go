package main

import (
	"strconv"
	"strings"
	"time"

	"github.com/inopipe/inopipe/internal/event"
)

// textFormat prints events the way inotifywait does: its default line
// ("%w %,e %f"), its CSV line (-c) or a --format string.
type textFormat struct {
	parts     []part
	csv       bool
	noNewline bool
	timefmt   string
	loc       *time.Location // %T's zone (localZone); nil: time.Local
	// display maps an absolute watch path back to the spelling the user
	// gave on the command line ("dir/" rather than "/home/u/dir/"), as
	// inotifywait prints it.
	display func(watch string) string
}

type part struct {
	lit  string
	verb byte // 0: literal; 'w','f','e','T','c'
	sep  string
}

// parseFormat compiles an inotifywait --format string. Unknown directives
// are printed as they are, as inotifywait does.
func parseFormat(f string) []part {
	var parts []part
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			parts = append(parts, part{lit: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(f); i++ {
		c := f[i]
		if c != '%' || i+1 >= len(f) {
			lit.WriteByte(c)
			continue
		}
		d := f[i+1]
		switch d {
		case 'w', 'f', 'e', 'T', 'c':
			flush()
			parts = append(parts, part{verb: d, sep: ","})
			i++
		case '0':
			lit.WriteByte(0)
			i++
		case 'n':
			lit.WriteByte('\n')
			i++
		case '%':
			lit.WriteByte('%')
			i++
		default:
			// %Xe: events separated by the character X
			if i+2 < len(f) && f[i+2] == 'e' {
				flush()
				parts = append(parts, part{verb: 'e', sep: string(d)})
				i += 2
				continue
			}
			lit.WriteByte(c)
		}
	}
	flush()
	return parts
}

// usesTime reports whether the format has a %T directive.
func usesTime(parts []part) bool {
	for _, p := range parts {
		if p.verb == 'T' {
			return true
		}
	}
	return false
}

func (f *textFormat) watch(ev *event.Event) string {
	if f.display != nil {
		return f.display(ev.Watch)
	}
	return ev.Watch
}

func (f *textFormat) append(dst []byte, ev *event.Event) []byte {
	if f.csv {
		dst = appendCSV(dst, f.watch(ev))
		dst = append(dst, ',')
		dst = appendCSV(dst, ev.Op.Join(","))
		dst = append(dst, ',')
		dst = appendCSV(dst, ev.Name)
		return append(dst, '\n')
	}
	for _, p := range f.parts {
		switch p.verb {
		case 0:
			dst = append(dst, p.lit...)
		case 'w':
			dst = append(dst, f.watch(ev)...)
		case 'f':
			dst = append(dst, ev.Name...)
		case 'e':
			dst = append(dst, ev.Op.Join(p.sep)...)
		case 'c':
			dst = strconv.AppendUint(dst, uint64(ev.Cookie), 16)
		case 'T':
			loc := f.loc
			if loc == nil {
				loc = time.Local
			}
			dst = strftime(dst, f.timefmt, ev.Time.In(loc))
		}
	}
	if !f.noNewline {
		dst = append(dst, '\n')
	}
	return dst
}

// appendCSV quotes s as inotifywait's -c does: only when it holds a quote,
// a comma or a newline, or starts or ends with a space; quotes are doubled.
func appendCSV(dst []byte, s string) []byte {
	need := strings.ContainsAny(s, "\",\n") || strings.HasPrefix(s, " ") || strings.HasSuffix(s, " ")
	if !need {
		return append(dst, s...)
	}
	dst = append(dst, '"')
	dst = append(dst, strings.ReplaceAll(s, `"`, `""`)...)
	return append(dst, '"')
}

var (
	shortDays   = []string{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"}
	longDays    = []string{"Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"}
	shortMonths = []string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}
	longMonths  = []string{"January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"}
)

// strftime formats t like C's strftime(3) in the C locale, for --timefmt.
// Unknown conversions are copied as they are.
func strftime(dst []byte, format string, t time.Time) []byte {
	pad := func(dst []byte, n, width int, padc byte) []byte {
		s := strconv.Itoa(n)
		for i := len(s); i < width; i++ {
			dst = append(dst, padc)
		}
		return append(dst, s...)
	}
	for i := 0; i < len(format); i++ {
		c := format[i]
		if c != '%' || i+1 >= len(format) {
			dst = append(dst, c)
			continue
		}
		i++
		switch format[i] {
		case 'a':
			dst = append(dst, shortDays[t.Weekday()]...)
		case 'A':
			dst = append(dst, longDays[t.Weekday()]...)
		case 'b', 'h':
			dst = append(dst, shortMonths[t.Month()-1]...)
		case 'B':
			dst = append(dst, longMonths[t.Month()-1]...)
		case 'c':
			dst = strftime(dst, "%a %b %e %H:%M:%S %Y", t)
		case 'C':
			dst = pad(dst, t.Year()/100, 2, '0')
		case 'd':
			dst = pad(dst, t.Day(), 2, '0')
		case 'D':
			dst = strftime(dst, "%m/%d/%y", t)
		case 'e':
			dst = pad(dst, t.Day(), 2, ' ')
		case 'F':
			dst = strftime(dst, "%Y-%m-%d", t)
		case 'H':
			dst = pad(dst, t.Hour(), 2, '0')
		case 'I':
			dst = pad(dst, (t.Hour()+11)%12+1, 2, '0')
		case 'j':
			dst = pad(dst, t.YearDay(), 3, '0')
		case 'k':
			dst = pad(dst, t.Hour(), 2, ' ')
		case 'l':
			dst = pad(dst, (t.Hour()+11)%12+1, 2, ' ')
		case 'm':
			dst = pad(dst, int(t.Month()), 2, '0')
		case 'M':
			dst = pad(dst, t.Minute(), 2, '0')
		case 'n':
			dst = append(dst, '\n')
		case 'N': // GNU date's nanoseconds; not in strftime, handy here
			dst = pad(dst, t.Nanosecond(), 9, '0')
		case 'p':
			if t.Hour() < 12 {
				dst = append(dst, "AM"...)
			} else {
				dst = append(dst, "PM"...)
			}
		case 'r':
			dst = strftime(dst, "%I:%M:%S %p", t)
		case 'R':
			dst = strftime(dst, "%H:%M", t)
		case 's':
			dst = strconv.AppendInt(dst, t.Unix(), 10)
		case 'S':
			dst = pad(dst, t.Second(), 2, '0')
		case 't':
			dst = append(dst, '\t')
		case 'T':
			dst = strftime(dst, "%H:%M:%S", t)
		case 'u':
			wd := int(t.Weekday())
			if wd == 0 {
				wd = 7
			}
			dst = pad(dst, wd, 1, '0')
		case 'w':
			dst = pad(dst, int(t.Weekday()), 1, '0')
		case 'x':
			dst = strftime(dst, "%m/%d/%y", t)
		case 'X':
			dst = strftime(dst, "%H:%M:%S", t)
		case 'y':
			dst = pad(dst, t.Year()%100, 2, '0')
		case 'Y':
			dst = strconv.AppendInt(dst, int64(t.Year()), 10)
		case 'z':
			dst = t.AppendFormat(dst, "-0700")
		case 'Z':
			dst = t.AppendFormat(dst, "MST")
		case '%':
			dst = append(dst, '%')
		default:
			dst = append(dst, '%', format[i])
		}
	}
	return dst
}
