package event

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// LineError is a malformed input line. The stream can go on after it.
type LineError struct {
	Line int   // 1-based line number in the input
	Err  error // what was wrong
}

func (e *LineError) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }
func (e *LineError) Unwrap() error { return e.Err }

// Decoder reads JSON-lines records from a stream. Lines may be of any
// length. Blank lines are skipped.
type Decoder struct {
	r    *bufio.Reader
	line int
	buf  []byte
	raw  []byte
	u    unmarshaler
}

// NewDecoder returns a Decoder reading from r.
func NewDecoder(r io.Reader) *Decoder {
	return &Decoder{r: bufio.NewReaderSize(r, 64*1024)}
}

// Line returns the number of the line last read.
func (d *Decoder) Line() int { return d.line }

// ReadLine returns the next non-blank line without its "\n". The slice is
// valid until the next call. It returns io.EOF at the end of the input; a
// final line without "\n" is still returned.
func (d *Decoder) ReadLine() ([]byte, error) {
	for {
		d.buf = d.buf[:0]
		for {
			chunk, err := d.r.ReadSlice('\n')
			d.buf = append(d.buf, chunk...)
			if err == bufio.ErrBufferFull {
				continue
			}
			if err != nil {
				if err == io.EOF && len(d.buf) > 0 {
					break
				}
				return nil, err
			}
			break
		}
		d.line++
		line := bytes.TrimRight(d.buf, "\r\n")
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		return line, nil
	}
}

// SkipTime makes Next leave Event.Time zero instead of parsing it.
func (d *Decoder) SkipTime(skip bool) { d.u.SkipTime = skip }

// Raw returns the line Next last read, without its "\n"; valid until the
// next call. Filters that pass lines through write it unchanged.
func (d *Decoder) Raw() []byte { return d.raw }

// Next reads and decodes the next record. A malformed line yields a
// *LineError; the caller may report it and call Next again.
func (d *Decoder) Next(rec *Record) error {
	line, err := d.ReadLine()
	if err != nil {
		return err
	}
	d.raw = line
	if err := d.u.Unmarshal(line, rec); err != nil {
		return &LineError{Line: d.line, Err: err}
	}
	return nil
}

var (
	errNotObject = errors.New("not a JSON object")
	errUnknown   = errors.New("neither an event, a batch nor a result (no \"events\", \"seq\" or \"target\")")
)

// Unmarshal decodes one line into rec, deciding its kind: a line with
// "target" is a result, one whose "events" is an array is an event, one
// with "seq", "sync", "delete" or "full" is a batch, one with only
// "rules" is a rules record.
func Unmarshal(line []byte, rec *Record) error {
	var u unmarshaler
	return u.Unmarshal(line, rec)
}

// unmarshaler decodes lines like Unmarshal, reusing the strings of the
// last root and watch it saw: in a stream they repeat from line to line,
// and not allocating them again is most of a filter's decoding cost.
type unmarshaler struct {
	root, watch string
	// SkipTime leaves Event.Time zero instead of parsing "time" (for
	// stages that pass lines through unchanged and never look at it).
	SkipTime bool
}

// Unmarshal decodes one line into rec (see the package function): the
// object's keys are read in one pass, each by the part of the record it
// belongs to (eventField, batchField, resultField), and the kind decided
// at the end from what was seen.
func (u *unmarshaler) Unmarshal(line []byte, rec *Record) error {
	*rec = Record{}
	p := parser{b: line}
	var seen seen
	p.ws()
	if p.peek() != '{' {
		return errNotObject
	}
	err := p.object(true, func(key string) error {
		ok, err := u.eventField(&p, key, rec, &seen)
		if !ok && err == nil {
			ok, err = batchField(&p, key, rec, &seen)
		}
		if !ok && err == nil {
			ok, err = resultField(&p, key, rec, &seen)
		}
		if !ok && err == nil {
			if key == "rules" {
				seen.rules = true
				err = p.rules(&rec.Rules)
			} else {
				err = p.skip(0) // a field this version does not know
			}
		}
		if err != nil {
			return fmt.Errorf("field %q: %w", key, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	p.ws()
	if p.i != len(p.b) {
		return p.errf("trailing data after object")
	}
	return seen.kind(rec)
}

// seen is what the keys of a line said about its kind.
type seen struct {
	eventsArray, eventsNumber, batch, result, path, rules bool
}

// kind decides the record's kind: "target" makes a result, an "events"
// array an event, "seq", "sync", "delete", "full" or an "events" count a
// batch, "rules" alone a rules record.
func (s *seen) kind(rec *Record) error {
	switch {
	case s.result:
		rec.Kind = KindResult
	case s.eventsArray:
		rec.Kind = KindEvent
		ev := &rec.Event
		if !s.path {
			ev.Path = ev.Watch + ev.Name
		}
		if ev.Op == 0 {
			return errors.New(`field "events": no event names`)
		}
	case s.batch || s.eventsNumber:
		rec.Kind = KindBatch
		if s.rules {
			r := rec.Rules
			rec.Batch.Rules = &r
			rec.Rules = Rules{}
		}
	case s.rules:
		rec.Kind = KindRules
	default:
		return errUnknown
	}
	return nil
}

// eventField reads the keys of an event ("root" and "events" are shared
// with batches and results).
func (u *unmarshaler) eventField(p *parser, key string, rec *Record, s *seen) (ok bool, err error) {
	ev := &rec.Event
	switch key {
	case "time":
		if u.SkipTime {
			err = p.skip(0)
		} else {
			ev.Time, err = p.time()
		}
	case "root":
		ev.Root, err = p.strCached(&u.root)
		rec.Batch.Root, rec.Result.Root = ev.Root, ev.Root
	case "watch":
		ev.Watch, err = p.strCached(&u.watch)
	case "name":
		ev.Name, err = p.str()
	case "path":
		ev.Path, err = p.str()
		s.path = true
	case "events":
		if p.peek() == '[' {
			s.eventsArray = true
			ev.Op, err = p.ops()
		} else {
			s.eventsNumber = true
			rec.Batch.Events, err = p.intVal()
		}
	case "cookie":
		var n int64
		n, err = p.int()
		if err == nil && (n < 0 || n > 1<<32-1) {
			err = fmt.Errorf("cookie %d out of range", n)
		}
		ev.Cookie = uint32(n)
	case "synthetic":
		ev.Synthetic, err = p.bool()
	default:
		return false, nil
	}
	return true, err
}

// batchField reads the keys of a batch ("seq" is shared with results).
func batchField(p *parser, key string, rec *Record, s *seen) (ok bool, err error) {
	bt := &rec.Batch
	switch key {
	case "seq":
		s.batch = true
		var n int64
		n, err = p.int()
		if err == nil && n < 0 {
			err = fmt.Errorf("seq %d is negative", n)
		}
		bt.Seq, rec.Result.Seq = uint64(n), uint64(n)
	case "sync":
		s.batch = true
		bt.Sync, err = p.strs()
	case "delete":
		s.batch = true
		bt.Delete, err = p.strs()
	case "written":
		s.batch = true
		bt.Written, err = p.strs()
	case "full":
		s.batch = true
		bt.Full, err = p.bool()
	case "renames":
		s.batch = true
		bt.Renames, err = p.renames()
	case "first":
		bt.First, err = p.time()
	case "last":
		bt.Last, err = p.time()
	default:
		return false, nil
	}
	return true, err
}

// resultField reads the keys of a result.
func resultField(p *parser, key string, rec *Record, s *seen) (ok bool, err error) {
	rs := &rec.Result
	switch key {
	case "target":
		s.result = true
		rs.Target, err = p.str()
	case "ok":
		rs.OK, err = p.bool()
	case "exit":
		rs.Exit, err = p.intVal()
	case "paths":
		rs.Paths, err = p.intVal()
	case "bytes":
		rs.Bytes, err = p.int()
	case "seconds":
		rs.Seconds, err = p.float()
	case "attempts":
		rs.Attempts, err = p.intVal()
	case "error":
		rs.Error, err = p.str()
	case "spooled":
		rs.Spooled, err = p.str()
	default:
		return false, nil
	}
	return true, err
}

// renames reads [{"from":"a","to":"b","dir":true},...]; both paths must be
// relative, without "." or ".." elements.
func (p *parser) renames() ([]Rename, error) {
	if !p.eat('[') {
		return nil, p.errf("expected an array of renames")
	}
	var out []Rename
	p.ws()
	if p.eat(']') {
		return out, nil
	}
	for {
		p.ws()
		if p.peek() != '{' {
			return nil, p.errf("expected a rename object")
		}
		var m Rename
		err := p.object(false, func(key string) (err error) {
			switch key {
			case "from":
				m.From, err = p.str()
			case "to":
				m.To, err = p.str()
			case "dir":
				m.Dir, err = p.bool()
			default:
				err = p.skip(1)
			}
			if err != nil {
				return fmt.Errorf("%q: %w", key, err)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		if !m.Valid() {
			return nil, fmt.Errorf("rename %q → %q: paths must be relative, without . or .. elements", m.From, m.To)
		}
		out = append(out, m)
		p.ws()
		if p.eat(',') {
			continue
		}
		if p.eat(']') {
			return out, nil
		}
		return nil, p.errf("expected ',' or ']'")
	}
}

// rules reads {"exclude":[...],"include":[...]}; an absent "include" is
// nil (no includes), a present one, even empty, is not.
func (p *parser) rules(r *Rules) error {
	if p.peek() != '{' {
		return p.errf("expected an object")
	}
	err := p.object(false, func(key string) (err error) {
		switch key {
		case "exclude":
			r.Exclude, err = p.strs()
		case "include":
			r.Include, err = p.strs()
			if err == nil && r.Include == nil {
				r.Include = []string{}
			}
		default:
			err = p.skip(1)
		}
		if err != nil {
			return fmt.Errorf("%q: %w", key, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return r.Check()
}

// object reads a JSON object, handing each key to field with the parser
// on its value; field must consume the value. An empty object is
// errUnknown for a whole line (top), and fine inside one.
func (p *parser) object(top bool, field func(key string) error) error {
	if !p.eat('{') {
		return p.errf("expected an object")
	}
	p.ws()
	if p.eat('}') {
		if top {
			return errUnknown
		}
		return nil
	}
	for {
		p.ws()
		key, err := p.str()
		if err != nil {
			return fmt.Errorf("object key: %w", err)
		}
		p.ws()
		if !p.eat(':') {
			return p.errf("expected ':' after key %q", key)
		}
		p.ws()
		if err := field(key); err != nil {
			return err
		}
		p.ws()
		if p.eat(',') {
			continue
		}
		if p.eat('}') {
			return nil
		}
		return p.errf("expected ',' or '}'")
	}
}

// parser is a small JSON reader for flat records. It exists (instead of
// encoding/json) for two reasons: \udcXX escapes must become raw bytes (see
// the package doc), and each stage must sustain >500k lines/s.
type parser struct {
	b []byte
	i int
}

func (p *parser) errf(format string, a ...any) error {
	return fmt.Errorf("at byte %d: %s", p.i+1, fmt.Sprintf(format, a...))
}

func (p *parser) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\r', '\n':
			p.i++
		default:
			return
		}
	}
}

func (p *parser) peek() byte {
	if p.i < len(p.b) {
		return p.b[p.i]
	}
	return 0
}

func (p *parser) eat(c byte) bool {
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *parser) str() (string, error) {
	if !p.eat('"') {
		return "", p.errf("expected a string")
	}
	start := p.i
	// Fast path: no escapes.
	for p.i < len(p.b) {
		c := p.b[p.i]
		if c == '"' {
			s := string(p.b[start:p.i])
			p.i++
			return s, nil
		}
		if c == '\\' || c < 0x20 {
			break
		}
		p.i++
	}
	out := append([]byte(nil), p.b[start:p.i]...)
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			p.i++
			return string(out), nil
		case c < 0x20:
			return "", p.errf("control character 0x%02x in string", c)
		case c != '\\':
			out = append(out, c)
			p.i++
			continue
		}
		p.i++
		if p.i >= len(p.b) {
			break
		}
		e := p.b[p.i]
		p.i++
		switch e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, err := p.hex4()
			if err != nil {
				return "", err
			}
			switch {
			case r >= 0xdc80 && r <= 0xdcff:
				// surrogateescape: one raw byte of a non-UTF-8 name
				out = append(out, byte(r-0xdc00))
			case utf16.IsSurrogate(r) && r < 0xdc00:
				// high surrogate: must be followed by a low one
				if p.i+1 < len(p.b) && p.b[p.i] == '\\' && p.b[p.i+1] == 'u' {
					p.i += 2
					r2, err := p.hex4()
					if err != nil {
						return "", err
					}
					if c := utf16.DecodeRune(r, r2); c != utf8.RuneError {
						out = utf8.AppendRune(out, c)
						continue
					}
				}
				return "", p.errf("unpaired UTF-16 surrogate \\u%04x", r)
			case utf16.IsSurrogate(r):
				return "", p.errf("unpaired UTF-16 surrogate \\u%04x", r)
			default:
				out = utf8.AppendRune(out, r)
			}
		default:
			return "", p.errf("invalid escape \\%c", e)
		}
	}
	return "", p.errf("unterminated string")
}

// strCached is str, returning *cache when the string is the same. Only a
// cache that needs no escaping in JSON (no '"', '\\' or control byte) can
// be compared with the raw bytes of the line: a raw '"' there ends the
// string (a cached `a"b` must not match the invalid `"a"b"`).
func (p *parser) strCached(cache *string) (string, error) {
	if p.i < len(p.b) && p.b[p.i] == '"' {
		end := p.i + 1 + len(*cache)
		if end < len(p.b) && p.b[end] == '"' && string(p.b[p.i+1:end]) == *cache && plain(p.b[p.i+1:end]) {
			p.i = end + 1
			return *cache, nil
		}
	}
	s, err := p.str()
	if err == nil {
		*cache = s
	}
	return s, err
}

// plain reports whether b can stand in a JSON string as is.
func plain(b []byte) bool {
	for _, c := range b {
		if c == '"' || c == '\\' || c < 0x20 {
			return false
		}
	}
	return true
}

func (p *parser) hex4() (rune, error) {
	if p.i+4 > len(p.b) {
		return 0, p.errf("short \\u escape")
	}
	var r rune
	for _, c := range p.b[p.i : p.i+4] {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			return 0, p.errf("bad hex digit in \\u escape")
		}
	}
	p.i += 4
	return r, nil
}

func (p *parser) strs() ([]string, error) {
	if p.eat('n') {
		if p.lit("ull") {
			return nil, nil
		}
		return nil, p.errf("expected an array of strings")
	}
	if !p.eat('[') {
		return nil, p.errf("expected an array of strings")
	}
	out := []string{}
	p.ws()
	if p.eat(']') {
		return out, nil
	}
	for {
		p.ws()
		s, err := p.str()
		if err != nil {
			return nil, err
		}
		out = append(out, s)
		p.ws()
		if p.eat(',') {
			continue
		}
		if p.eat(']') {
			return out, nil
		}
		return nil, p.errf("expected ',' or ']'")
	}
}

func (p *parser) ops() (Op, error) {
	p.eat('[')
	var op Op
	p.ws()
	if p.eat(']') {
		return 0, nil
	}
	for {
		p.ws()
		s, err := p.str()
		if err != nil {
			return 0, err
		}
		o, ok := opFromWireName(s)
		if !ok {
			return 0, fmt.Errorf("unknown event name %q", s)
		}
		op |= o
		p.ws()
		if p.eat(',') {
			continue
		}
		if p.eat(']') {
			return op, nil
		}
		return 0, p.errf("expected ',' or ']'")
	}
}

func (p *parser) lit(s string) bool {
	if bytes.HasPrefix(p.b[p.i:], []byte(s)) {
		p.i += len(s)
		return true
	}
	return false
}

func (p *parser) bool() (bool, error) {
	switch {
	case p.lit("true"):
		return true, nil
	case p.lit("false"), p.lit("null"):
		return false, nil
	}
	return false, p.errf("expected true or false")
}

func (p *parser) number() []byte {
	start := p.i
	for p.i < len(p.b) {
		c := p.b[p.i]
		if (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E' {
			p.i++
			continue
		}
		break
	}
	return p.b[start:p.i]
}

// jsonNumber reports whether tok follows JSON's number grammar, which is
// stricter than strconv's: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func jsonNumber(tok []byte) bool {
	i := 0
	digits := func() int {
		n := 0
		for i < len(tok) && tok[i] >= '0' && tok[i] <= '9' {
			i++
			n++
		}
		return n
	}
	if i < len(tok) && tok[i] == '-' {
		i++
	}
	switch {
	case i < len(tok) && tok[i] == '0':
		i++
	case digits() == 0:
		return false
	}
	if i < len(tok) && tok[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < len(tok) && (tok[i] == 'e' || tok[i] == 'E') {
		i++
		if i < len(tok) && (tok[i] == '+' || tok[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(tok)
}

func (p *parser) int() (int64, error) {
	if p.lit("null") {
		return 0, nil
	}
	tok := p.number()
	n, err := strconv.ParseInt(string(tok), 10, 64)
	if err != nil || !jsonNumber(tok) {
		return 0, p.errf("expected an integer, got %q", tok)
	}
	return n, nil
}

// intVal reads an integer into an int (counts, exit codes).
func (p *parser) intVal() (int, error) {
	n, err := p.int()
	return int(n), err
}

func (p *parser) float() (float64, error) {
	if p.lit("null") {
		return 0, nil
	}
	tok := p.number()
	f, err := strconv.ParseFloat(string(tok), 64)
	if err != nil || !jsonNumber(tok) {
		return 0, p.errf("expected a number, got %q", tok)
	}
	return f, nil
}

func (p *parser) time() (time.Time, error) {
	if p.lit("null") {
		return time.Time{}, nil
	}
	s, err := p.str()
	if err != nil {
		return time.Time{}, err
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("bad RFC 3339 time %q", s)
	}
	return t.UTC(), nil
}

// skip skips one JSON value of any kind (for unknown fields).
func (p *parser) skip(depth int) error {
	if depth > 64 {
		return p.errf("nesting too deep")
	}
	p.ws()
	switch c := p.peek(); {
	case c == '"':
		_, err := p.str()
		return err
	case c == '{' || c == '[':
		closing := byte('}')
		if c == '[' {
			closing = ']'
		}
		p.i++
		p.ws()
		if p.eat(closing) {
			return nil
		}
		for {
			p.ws()
			if c == '{' {
				if _, err := p.str(); err != nil {
					return err
				}
				p.ws()
				if !p.eat(':') {
					return p.errf("expected ':'")
				}
			}
			if err := p.skip(depth + 1); err != nil {
				return err
			}
			p.ws()
			if p.eat(',') {
				continue
			}
			if p.eat(closing) {
				return nil
			}
			return p.errf("expected ',' or '%c'", closing)
		}
	case c == 't' || c == 'f' || c == 'n':
		if p.lit("true") || p.lit("false") || p.lit("null") {
			return nil
		}
	case c == '-' || (c >= '0' && c <= '9'):
		if tok := p.number(); jsonNumber(tok) {
			return nil
		}
	}
	return p.errf("invalid value")
}

// Buffered returns the number of input bytes read but not yet decoded;
// when it is 0 the next read may block, so a filter should flush first.
func (d *Decoder) Buffered() int { return d.r.Buffered() }

// ErrStrict ends Each at the first malformed line when it runs strict.
var ErrStrict = errors.New("event: malformed input line (strict)")

// ErrNotEvent is the LineError of a record of another kind where events
// are expected.
var ErrNotEvent = errors.New("not an event record")

// Each is the read loop every stage runs: it decodes records until the
// end of the input and calls fn for each. Before a read that may block
// (nothing left buffered) it calls idle, where a stage flushes its output.
// A malformed line, or one fn rejects by returning a *LineError, goes to
// bad and the loop goes on; with strict it then stops with ErrStrict. Any
// other error from fn, idle or the input ends the loop and is returned.
// idle and bad may be nil.
func (d *Decoder) Each(strict bool, idle func() error, bad func(*LineError), fn func(*Record) error) error {
	var rec Record
	for {
		if idle != nil && d.Buffered() == 0 {
			if err := idle(); err != nil {
				return err
			}
		}
		err := d.Next(&rec)
		if err == io.EOF {
			return nil
		}
		var le *LineError
		if err == nil {
			if err = fn(&rec); err == nil {
				continue
			}
		}
		if !errors.As(err, &le) {
			return err
		}
		if bad != nil {
			bad(le)
		}
		if strict {
			return ErrStrict
		}
	}
}
