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
	for i := 0; i < len(format); i++ {
		c := format[i]
		if c != '%' || i+1 >= len(format) {
			dst = append(dst, c)
			continue
		}
		// glibc's optional flag (- no padding, _ spaces, 0 zeros, ^ upper
		// case, # swap case) and width, then the conversion.
		start := i
		i++
		var flag byte
		if strings.IndexByte("-_0^#", format[i]) >= 0 {
			flag = format[i]
			i++
		}
		width := -1
		for i < len(format) && format[i] >= '0' && format[i] <= '9' {
			if width < 0 {
				width = 0
			}
			width = width*10 + int(format[i]-'0')
			i++
		}
		if i >= len(format) {
			dst = append(dst, format[start:]...)
			break
		}
		num := func(n, w int, padc byte) {
			switch flag {
			case '-':
				w = 0
			case '_':
				padc = ' '
			case '0':
				padc = '0'
			}
			if width >= 0 {
				w = width
			}
			str := strconv.Itoa(n)
			for k := len(str); k < w; k++ {
				dst = append(dst, padc)
			}
			dst = append(dst, str...)
		}
		text := func(s string) {
			switch flag {
			case '^':
				s = strings.ToUpper(s)
			case '#':
				s = swapCase(s)
			}
			for k := len(s); k < width; k++ {
				dst = append(dst, ' ')
			}
			dst = append(dst, s...)
		}
		isoYear, isoWeek := t.ISOWeek()
		switch format[i] {
		case 'a':
			text(shortDays[t.Weekday()])
		case 'A':
			text(longDays[t.Weekday()])
		case 'b', 'h':
			text(shortMonths[t.Month()-1])
		case 'B':
			text(longMonths[t.Month()-1])
		case 'c':
			text(string(strftime(nil, "%a %b %e %H:%M:%S %Y", t)))
		case 'C':
			num(t.Year()/100, 2, '0')
		case 'd':
			num(t.Day(), 2, '0')
		case 'D':
			text(string(strftime(nil, "%m/%d/%y", t)))
		case 'e':
			num(t.Day(), 2, ' ')
		case 'F':
			text(string(strftime(nil, "%Y-%m-%d", t)))
		case 'g':
			num(isoYear%100, 2, '0')
		case 'G':
			num(isoYear, 1, '0')
		case 'H':
			num(t.Hour(), 2, '0')
		case 'I':
			num((t.Hour()+11)%12+1, 2, '0')
		case 'j':
			num(t.YearDay(), 3, '0')
		case 'k':
			num(t.Hour(), 2, ' ')
		case 'l':
			num((t.Hour()+11)%12+1, 2, ' ')
		case 'm':
			num(int(t.Month()), 2, '0')
		case 'M':
			num(t.Minute(), 2, '0')
		case 'n':
			dst = append(dst, '\n')
		case 'p':
			if t.Hour() < 12 {
				text("AM")
			} else {
				text("PM")
			}
		case 'P':
			if t.Hour() < 12 {
				text("am")
			} else {
				text("pm")
			}
		case 'r':
			text(string(strftime(nil, "%I:%M:%S %p", t)))
		case 'R':
			text(string(strftime(nil, "%H:%M", t)))
		case 's':
			dst = strconv.AppendInt(dst, t.Unix(), 10)
		case 'S':
			num(t.Second(), 2, '0')
		case 't':
			dst = append(dst, '\t')
		case 'T':
			text(string(strftime(nil, "%H:%M:%S", t)))
		case 'u':
			wd := int(t.Weekday())
			if wd == 0 {
				wd = 7
			}
			num(wd, 1, '0')
		case 'U': // week of the year, Sunday first
			num((t.YearDay()+6-int(t.Weekday()))/7, 2, '0')
		case 'V':
			num(isoWeek, 2, '0')
		case 'w':
			num(int(t.Weekday()), 1, '0')
		case 'W': // week of the year, Monday first
			num((t.YearDay()+6-(int(t.Weekday())+6)%7)/7, 2, '0')
		case 'x':
			text(string(strftime(nil, "%m/%d/%y", t)))
		case 'X':
			text(string(strftime(nil, "%H:%M:%S", t)))
		case 'y':
			num(t.Year()%100, 2, '0')
		case 'Y':
			num(t.Year(), 1, '0')
		case 'z':
			dst = t.AppendFormat(dst, "-0700")
		case 'Z':
			text(t.Format("MST"))
		case '%':
			dst = append(dst, '%')
		default:
			// glibc prints an unknown conversion as written (%N too:
			// strftime has no nanoseconds)
			dst = append(dst, format[start:i+1]...)
		}
	}
	return dst
}

func swapCase(s string) string {
	b := []byte(s)
	for i, c := range b {
		switch {
		case c >= 'a' && c <= 'z':
			b[i] = c - 'a' + 'A'
		case c >= 'A' && c <= 'Z':
			b[i] = c - 'A' + 'a'
		}
	}
	return string(b)
}
