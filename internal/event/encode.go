package event

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// TimeFormat is the layout of every time field: RFC 3339 with nanoseconds.
const TimeFormat = time.RFC3339Nano

// AppendEvent appends ev as one JSON line (with its "\n") to dst.
func AppendEvent(dst []byte, ev *Event) []byte {
	dst = append(dst, '{')
	first := true
	if !ev.Time.IsZero() {
		dst = appendKey(dst, "time", &first)
		dst = appendTime(dst, ev.Time)
	}
	dst = appendKey(dst, "root", &first)
	dst = AppendString(dst, ev.Root)
	dst = appendKey(dst, "watch", &first)
	dst = AppendString(dst, ev.Watch)
	dst = appendKey(dst, "name", &first)
	dst = AppendString(dst, ev.Name)
	dst = appendKey(dst, "path", &first)
	dst = AppendString(dst, ev.Path)
	dst = appendKey(dst, "events", &first)
	dst = append(dst, '[')
	n := 0
	for _, on := range opNames {
		if ev.Op&on.op != 0 {
			if n > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, '"')
			dst = append(dst, on.name...)
			dst = append(dst, '"')
			n++
		}
	}
	dst = append(dst, ']')
	if ev.Cookie != 0 {
		dst = appendKey(dst, "cookie", &first)
		dst = strconv.AppendUint(dst, uint64(ev.Cookie), 10)
	}
	if ev.Synthetic {
		dst = appendKey(dst, "synthetic", &first)
		dst = append(dst, "true"...)
	}
	return append(dst, '}', '\n')
}

// AppendBatch appends b as one JSON line to dst. "sync" and "delete" are
// always present (possibly empty) so that consumers need no null checks.
func AppendBatch(dst []byte, b *Batch) []byte {
	dst = append(dst, `{"seq":`...)
	dst = strconv.AppendUint(dst, b.Seq, 10)
	first := false
	dst = appendKey(dst, "root", &first)
	dst = AppendString(dst, b.Root)
	dst = appendKey(dst, "sync", &first)
	dst = appendStrings(dst, b.Sync)
	dst = appendKey(dst, "delete", &first)
	dst = appendStrings(dst, b.Delete)
	if len(b.Written) > 0 {
		dst = appendKey(dst, "written", &first)
		dst = appendStrings(dst, b.Written)
	}
	if b.Full {
		dst = appendKey(dst, "full", &first)
		dst = append(dst, "true"...)
	}
	dst = appendKey(dst, "events", &first)
	dst = strconv.AppendInt(dst, int64(b.Events), 10)
	if !b.First.IsZero() {
		dst = appendKey(dst, "first", &first)
		dst = appendTime(dst, b.First)
	}
	if !b.Last.IsZero() {
		dst = appendKey(dst, "last", &first)
		dst = appendTime(dst, b.Last)
	}
	if b.Rules != nil {
		dst = appendKey(dst, "rules", &first)
		dst = appendRules(dst, b.Rules)
	}
	if len(b.Renames) > 0 {
		dst = appendKey(dst, "renames", &first)
		dst = append(dst, '[')
		for i, m := range b.Renames {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, `{"from":`...)
			dst = AppendString(dst, m.From)
			dst = append(dst, `,"to":`...)
			dst = AppendString(dst, m.To)
			if m.Dir {
				dst = append(dst, `,"dir":true`...)
			}
			dst = append(dst, '}')
		}
		dst = append(dst, ']')
	}
	return append(dst, '}', '\n')
}

// AppendRules appends a rules record ({"rules":{...}}) as one JSON line.
func AppendRules(dst []byte, r *Rules) []byte {
	dst = append(dst, `{"rules":`...)
	dst = appendRules(dst, r)
	return append(dst, '}', '\n')
}

func appendRules(dst []byte, r *Rules) []byte {
	dst = append(dst, `{"exclude":`...)
	dst = appendStrings(dst, r.Exclude)
	if r.Include != nil {
		dst = append(dst, `,"include":`...)
		dst = appendStrings(dst, r.Include)
	}
	return append(dst, '}')
}

// AppendResult appends r as one JSON line to dst.
func AppendResult(dst []byte, r *Result) []byte {
	dst = append(dst, `{"seq":`...)
	dst = strconv.AppendUint(dst, r.Seq, 10)
	first := false
	dst = appendKey(dst, "root", &first)
	dst = AppendString(dst, r.Root)
	dst = appendKey(dst, "target", &first)
	dst = AppendString(dst, r.Target)
	dst = appendKey(dst, "ok", &first)
	dst = strconv.AppendBool(dst, r.OK)
	dst = appendKey(dst, "exit", &first)
	dst = strconv.AppendInt(dst, int64(r.Exit), 10)
	dst = appendKey(dst, "paths", &first)
	dst = strconv.AppendInt(dst, int64(r.Paths), 10)
	dst = appendKey(dst, "bytes", &first)
	dst = strconv.AppendInt(dst, r.Bytes, 10)
	dst = appendKey(dst, "seconds", &first)
	dst = strconv.AppendFloat(dst, r.Seconds, 'f', -1, 64)
	dst = appendKey(dst, "attempts", &first)
	dst = strconv.AppendInt(dst, int64(r.Attempts), 10)
	if r.Error != "" {
		dst = appendKey(dst, "error", &first)
		dst = AppendString(dst, r.Error)
	}
	if r.Spooled != "" {
		dst = appendKey(dst, "spooled", &first)
		dst = AppendString(dst, r.Spooled)
	}
	return append(dst, '}', '\n')
}

func appendKey(dst []byte, key string, first *bool) []byte {
	if !*first {
		dst = append(dst, ',')
	}
	*first = false
	dst = append(dst, '"')
	dst = append(dst, key...)
	return append(dst, '"', ':')
}

func appendTime(dst []byte, t time.Time) []byte {
	dst = append(dst, '"')
	dst = t.UTC().AppendFormat(dst, TimeFormat)
	return append(dst, '"')
}

func appendStrings(dst []byte, ss []string) []byte {
	dst = append(dst, '[')
	for i, s := range ss {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = AppendString(dst, s)
	}
	return append(dst, ']')
}

const hexDigits = "0123456789abcdef"

// AppendString appends s as a JSON string. Bytes that are not part of valid
// UTF-8 are written as \udcXX (see the package doc), control characters as
// escapes; everything else is copied.
func AppendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', 'd', 'c', hexDigits[c>>4], hexDigits[c&0xf])
			i++
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
