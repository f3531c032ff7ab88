package filter

import (
	"fmt"
	"regexp/syntax"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/inopipe/inopipe/internal/event"
)

// Rules translates the set into rsync filter patterns that select exactly
// the paths Decide passes, so that every rsync run that walks a tree (a
// full sync, a "dir/" entry, a replay) sends what the live stream would
// have sent and, under --delete, keeps a target's excluded files as the
// live stream would have: rsync never deletes what its rules exclude.
//
// Each exclude regex r becomes anchored patterns for the paths it matches
// ("- PATTERN", any type) and, when r can match "a/b/", for the
// directories it matches that way ("- PATTERN/"); --temp becomes the
// patterns TempGlobs. Includes become "+ */", their patterns, "- *". A
// rule rsync cannot express exactly (a back-reference-like repetition, a
// word boundary, a class of many non-ASCII characters, matching the full
// path) is left out and returned as an error naming it: the caller must
// say so, since full syncs will not honour it.
//
// Event-type selection (-e) is not a path rule and has no translation:
// a full sync brings every path in line.
func (s *Set) Rules() (event.Rules, []error) {
	var r event.Rules
	var errs []error
	if s.Full && (len(s.Exclude) > 0 || len(s.Include) > 0) {
		errs = append(errs, fmt.Errorf("--match-full: patterns on the absolute path cannot be given to rsync, whose rules see paths relative to the root; write them relative to the root"))
		return r, errs
	}
	for _, re := range s.Exclude {
		f, d, err := Translate(re.String())
		if err != nil {
			errs = append(errs, fmt.Errorf("exclude %q: %w", userPattern(re.String()), err))
			continue
		}
		f, d = prune(f, d), prune(d, d)
		for _, p := range f {
			r.Exclude = appendNew(r.Exclude, p)
		}
		for _, p := range d {
			if !slices.Contains(f, p) {
				r.Exclude = appendNew(r.Exclude, p+"/")
			}
		}
	}
	if s.Temp {
		for _, g := range TempGlobs {
			r.Exclude = appendNew(r.Exclude, g)
		}
	}
	for _, re := range s.Include {
		f, _, err := Translate(re.String())
		if err != nil {
			errs = append(errs, fmt.Errorf("include %q: %w", userPattern(re.String()), err))
			continue
		}
		for _, p := range f {
			r.Include = appendNew(r.Include, p)
		}
	}
	if len(s.Include) > 0 && len(r.Include) == 0 && len(errs) == 0 {
		r.Include = []string{} // includes that match nothing: still "- *"
	}
	return r, errs
}

func appendNew(list []string, p string) []string {
	if slices.Contains(list, p) {
		return list
	}
	return append(list, p)
}

// userPattern strips the flags Compile adds.
func userPattern(src string) string {
	src = strings.TrimPrefix(src, "(?si)")
	return strings.TrimPrefix(src, "(?s)")
}

// TempGlobs are the --temp rules (TempPatterns) as rsync patterns on the
// last name of a path; TestTempGlobs checks them against IsTemp.
var TempGlobs = tempGlobs()

func tempGlobs() []string {
	const an = `[A-Za-z0-9]`
	const up = `[0-9A-Z]`
	g := []string{`.?*.sw[a-px]`, `*~`, `4913`, `#?*#`, `.#*`, `.~lock.?*#`, `.goutputstream-` + strings.Repeat(an, 6)}
	// sedXXXXXX and .name.XXXXXX: six letters or digits, one of them a
	// digit or a capital: one pattern per position of that character.
	for _, prefix := range []string{"sed", ".?*."} {
		for i := 0; i < 6; i++ {
			g = append(g, prefix+strings.Repeat(an, i)+up+strings.Repeat(an, 5-i))
		}
	}
	return g
}

// Translate turns a regular expression searched in a relative path (as
// Decide does) into rsync patterns: files are those matched as "a/b",
// dirs those matched as "a/b/" (to be used with a trailing "/"). The
// patterns are exact: rsync selects a path with one of them if and only
// if the regex matches it (TestTranslate checks it against a wildmatch
// model, and the differential test against rsync itself).
func Translate(src string) (files, dirs []string, err error) {
	re, err := syntax.Parse(src, syntax.Perl)
	if err != nil {
		return nil, nil, err
	}
	alts, err := conv(re.Simplify())
	if err != nil {
		return nil, nil, err
	}
	var seqs []seq
	for _, a := range alts {
		n, ok, err := normalize(a)
		if err != nil {
			return nil, nil, err
		}
		if ok {
			seqs = append(seqs, n)
		}
	}
	for _, sq := range seqs {
		for _, e := range expand(sq) {
			if p, ok := render(e); ok {
				files = appendNew(files, p)
			}
		}
		for _, q := range quotient(sq) {
			for _, e := range expand(q) {
				if p, ok := render(e); ok {
					dirs = appendNew(dirs, p)
				}
			}
		}
	}
	if len(files)+len(dirs) > maxPatterns {
		return nil, nil, fmt.Errorf("more than %d rsync patterns", maxPatterns)
	}
	return files, dirs, nil
}

// prune drops the patterns "X/**" where X is a pattern for directories
// (or for any path): what they match lies in a directory rsync never
// enters, so they only make the rules longer to read.
func prune(list, dirs []string) []string {
	var out []string
	for _, p := range list {
		x, ok := strings.CutSuffix(p, "/**")
		if ok && strings.HasPrefix(x, "/") && slices.Contains(dirs, x) {
			continue
		}
		out = append(out, p)
	}
	return out
}

// Limits on the expansion of alternations, optional parts and counted
// repetitions into separate patterns.
const (
	maxAlts     = 256
	maxPatterns = 256
	maxRunes    = 8 // non-ASCII characters of one class, each its own pattern
)

type tokKind uint8

const (
	tLit   tokKind = iota // one byte
	tClass                // one byte of an ASCII set (never '/')
	tAny                  // one character (slash: including '/')
	tStar                 // any run of bytes other than '/'
	tDStar                // any run of bytes
	tBegin                // ^
	tEnd                  // $
	tLoop                 // x* of anything else: exact only at an unanchored end
)

type tok struct {
	kind  tokKind
	b     byte
	slash bool      // tAny: '/' included
	set   [2]uint64 // tClass: bytes 0..127
}

type seq []tok

func (t tok) consumes() bool { return t.kind != tBegin && t.kind != tEnd }

func (t tok) nullable() bool {
	return t.kind == tStar || t.kind == tDStar || t.kind == tLoop
}

func litSeq(s string) seq {
	out := make(seq, len(s))
	for i := 0; i < len(s); i++ {
		out[i] = tok{kind: tLit, b: s[i]}
	}
	return out
}

// conv turns a regex into alternatives, each a sequence of tokens.
func conv(re *syntax.Regexp) ([]seq, error) {
	switch re.Op {
	case syntax.OpNoMatch:
		return nil, nil
	case syntax.OpEmptyMatch:
		return []seq{{}}, nil
	case syntax.OpLiteral:
		alts := []seq{{}}
		for _, r := range re.Rune {
			var one []seq
			if re.Flags&syntax.FoldCase != 0 {
				var err error
				if one, err = runeSet(fold(r)); err != nil {
					return nil, err
				}
			} else {
				one = []seq{litSeq(string(r))}
			}
			var err error
			if alts, err = product(alts, one); err != nil {
				return nil, err
			}
		}
		return alts, nil
	case syntax.OpCharClass:
		return runeSet(re.Rune)
	case syntax.OpAnyChar:
		return []seq{{{kind: tAny, slash: true}}}, nil
	case syntax.OpAnyCharNotNL:
		return nil, fmt.Errorf("\".\" without the s flag (any character but newline) has no rsync equivalent")
	case syntax.OpBeginText:
		return []seq{{{kind: tBegin}}}, nil
	case syntax.OpEndText:
		return []seq{{{kind: tEnd}}}, nil
	case syntax.OpBeginLine, syntax.OpEndLine:
		return nil, fmt.Errorf("multi-line ^ or $ (the m flag) has no rsync equivalent")
	case syntax.OpWordBoundary, syntax.OpNoWordBoundary:
		return nil, fmt.Errorf(`\b and \B have no rsync equivalent`)
	case syntax.OpCapture:
		return conv(re.Sub[0])
	case syntax.OpStar:
		if sub := re.Sub[0]; sub.Op == syntax.OpLiteral && len(sub.Rune) == 1 && sub.Rune[0] == '/' {
			// No path holds "//": "/*" is "/?" on every path tried.
			return []seq{{}, litSeq("/")}, nil
		}
		switch anyKind(re.Sub[0]) {
		case tDStar:
			return []seq{{{kind: tDStar}}}, nil
		case tStar:
			return []seq{{{kind: tStar}}}, nil
		}
		return []seq{{{kind: tLoop}}}, nil
	case syntax.OpPlus:
		one, err := conv(re.Sub[0])
		if err != nil {
			return nil, err
		}
		star, err := conv(&syntax.Regexp{Op: syntax.OpStar, Sub: re.Sub, Flags: re.Flags})
		if err != nil {
			return nil, err
		}
		return product(one, star)
	case syntax.OpQuest:
		one, err := conv(re.Sub[0])
		if err != nil {
			return nil, err
		}
		return union(one, []seq{{}})
	case syntax.OpConcat:
		alts := []seq{{}}
		for _, sub := range re.Sub {
			one, err := conv(sub)
			if err != nil {
				return nil, err
			}
			if alts, err = product(alts, one); err != nil {
				return nil, err
			}
		}
		return alts, nil
	case syntax.OpAlternate:
		var alts []seq
		for _, sub := range re.Sub {
			one, err := conv(sub)
			if err != nil {
				return nil, err
			}
			if alts, err = union(alts, one); err != nil {
				return nil, err
			}
		}
		return alts, nil
	}
	return nil, fmt.Errorf("%s has no rsync equivalent", re)
}

// anyKind says whether re is one character of any kind (tDStar when
// starred) or any but '/' (tStar), else tLoop.
func anyKind(re *syntax.Regexp) tokKind {
	if re.Op == syntax.OpAnyChar {
		return tDStar
	}
	if re.Op != syntax.OpCharClass {
		return tLoop
	}
	switch {
	case slices.Equal(re.Rune, []rune{0, unicode.MaxRune}):
		return tDStar
	case slices.Equal(re.Rune, []rune{0, '/' - 1, '/' + 1, unicode.MaxRune}):
		return tStar
	}
	return tLoop
}

func fold(r rune) []rune {
	set := []rune{r}
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		set = append(set, f)
	}
	slices.Sort(set)
	var ranges []rune
	for _, c := range set {
		ranges = append(ranges, c, c)
	}
	return ranges
}

// runeSet turns a class (pairs of ranges) into alternatives: one token
// for its ASCII part other than '/', a literal '/', and one literal per
// non-ASCII character (a few at most).
func runeSet(ranges []rune) ([]seq, error) {
	switch {
	case slices.Equal(ranges, []rune{0, unicode.MaxRune}):
		return []seq{{{kind: tAny, slash: true}}}, nil
	case slices.Equal(ranges, []rune{0, '/' - 1, '/' + 1, unicode.MaxRune}):
		return []seq{{{kind: tAny}}}, nil
	}
	var t tok
	t.kind = tClass
	var alts []seq
	nonASCII := 0
	for i := 0; i+1 < len(ranges); i += 2 {
		lo, hi := ranges[i], ranges[i+1]
		for c := lo; c <= hi && c < utf8.RuneSelf; c++ {
			if c == '/' {
				alts = append(alts, litSeq("/"))
				continue
			}
			if c == 0 {
				continue // no name holds a NUL
			}
			t.set[c/64] |= 1 << (c % 64)
		}
		if hi >= utf8.RuneSelf {
			if lo < utf8.RuneSelf {
				lo = utf8.RuneSelf
			}
			nonASCII += int(hi-lo) + 1
			if nonASCII > maxRunes {
				return nil, fmt.Errorf("a character class with more than %d non-ASCII characters has no rsync equivalent (rsync matches bytes)", maxRunes)
			}
			for c := lo; c <= hi; c++ {
				alts = append(alts, litSeq(string(c)))
			}
		}
	}
	if n := popcount(t.set); n == 1 {
		for c := 0; c < 128; c++ {
			if t.set[c/64]&(1<<(c%64)) != 0 {
				alts = append(alts, seq{{kind: tLit, b: byte(c)}})
			}
		}
	} else if n > 1 {
		alts = append(alts, seq{t})
	}
	return alts, nil
}

func popcount(s [2]uint64) int {
	n := 0
	for _, w := range s {
		for ; w != 0; w &= w - 1 {
			n++
		}
	}
	return n
}

func product(a, b []seq) ([]seq, error) {
	if len(a)*len(b) > maxAlts {
		return nil, fmt.Errorf("expands to more than %d rsync patterns", maxAlts)
	}
	out := make([]seq, 0, len(a)*len(b))
	for _, x := range a {
		for _, y := range b {
			out = append(out, append(slices.Clip(x), y...))
		}
	}
	return out, nil
}

func union(a, b []seq) ([]seq, error) {
	if len(a)+len(b) > maxAlts {
		return nil, fmt.Errorf("expands to more than %d rsync patterns", maxAlts)
	}
	return append(slices.Clip(a), b...), nil
}

// normalize resolves anchors (an unanchored side gets "**"), merges
// stars, and checks what bytes cannot express exactly. ok is false for an
// alternative that can never match a path (an anchor with something that
// must consume on its outer side).
func normalize(in seq) (out seq, ok bool, err error) {
	lastBegin, firstEnd := -1, len(in)
	for i, t := range in {
		if t.kind == tBegin {
			lastBegin = i
		}
	}
	for i := len(in) - 1; i >= 0; i-- {
		if in[i].kind == tEnd {
			firstEnd = i
		}
	}
	if lastBegin > firstEnd {
		return nil, false, nil // "$^" matches the empty string only
	}
	for _, t := range in[:lastBegin+1] {
		if t.consumes() && !t.nullable() {
			return nil, false, nil
		}
	}
	for _, t := range in[firstEnd:] {
		if t.consumes() && !t.nullable() {
			return nil, false, nil
		}
	}
	return finish(in[lastBegin+1:firstEnd], lastBegin >= 0, firstEnd < len(in))
}

func finish(body seq, begin, end bool) (seq, bool, error) {
	var s seq
	if !begin {
		s = append(s, tok{kind: tDStar})
	}
	s = append(s, body...)
	if !end {
		s = append(s, tok{kind: tDStar})
	}
	// merge runs of stars: "**" absorbs any star or loop next to it
	var out seq
	for _, t := range s {
		if len(out) > 0 {
			p := &out[len(out)-1]
			if t.nullable() && p.nullable() {
				switch {
				case p.kind == tDStar || t.kind == tDStar:
					p.kind = tDStar
				case p.kind == tStar && t.kind == tStar:
				default:
					return nil, false, fmt.Errorf("a repetition (x*, x+, x{n,}) of anything but \".\" or \"[^/]\" has no rsync equivalent")
				}
				continue
			}
		}
		out = append(out, t)
	}
	for i, t := range out {
		switch t.kind {
		case tLoop:
			return nil, false, fmt.Errorf("a repetition (x*, x+, x{n,}) of anything but \".\" or \"[^/]\" has no rsync equivalent")
		case tAny:
			// One character is one byte only for ASCII; next to a star
			// (and not to another single character) the two agree:
			// ".+" is "one or more bytes" either way.
			prev := i > 0 && (out[i-1].kind == tStar || out[i-1].kind == tDStar)
			next := i+1 < len(out) && (out[i+1].kind == tStar || out[i+1].kind == tDStar)
			lone := (i == 0 || out[i-1].kind != tAny) && (i+1 == len(out) || out[i+1].kind != tAny)
			if !(prev || next) || !lone {
				return nil, false, fmt.Errorf("a single \".\" or \"[^x]\" (one character, several bytes in UTF-8) has no rsync equivalent; use .+ or .* where you can")
			}
		}
	}
	return out, true, nil
}

// quotient: the sequences that match p where s matches p+"/" (the
// patterns for a directory tried as "a/b/").
func quotient(s seq) []seq {
	if len(s) == 0 {
		return nil
	}
	head, t := s[:len(s)-1], s[len(s)-1]
	switch t.kind {
	case tLit:
		if t.b == '/' {
			return []seq{slices.Clip(head)}
		}
	case tAny:
		if t.slash {
			return []seq{slices.Clip(head)}
		}
	case tStar:
		return quotient(head)
	case tDStar:
		return append([]seq{s}, quotient(head)...)
	}
	return nil
}

// expand turns each tAny that may be '/' into two sequences: one byte
// other than '/' ("?"), or "/".
func expand(s seq) []seq {
	for i, t := range s {
		if t.kind == tAny && t.slash {
			a := append(slices.Clone(s[:i]), tok{kind: tAny})
			a = append(a, s[i+1:]...)
			b := append(slices.Clone(s[:i]), tok{kind: tLit, b: '/'})
			b = append(b, s[i+1:]...)
			return append(expand(a), expand(b)...)
		}
	}
	return []seq{s}
}

// render writes a sequence as an rsync pattern. It is anchored ("/...")
// unless it is "**" then names without '/', which is the same as a
// pattern on the last name ("*.swp"). ok is false for a sequence that
// can match no path (empty, or ending in "/").
func render(s seq) (string, bool) {
	if len(s) == 0 || s[len(s)-1].kind == tLit && s[len(s)-1].b == '/' {
		return "", false
	}
	// rsync takes a pattern with any of * ? [ as wildcards, where a
	// backslash escapes; otherwise it compares it as it is.
	wild := false
	for _, t := range s {
		if t.kind != tLit || strings.IndexByte("*?[", t.b) >= 0 {
			wild = true
		}
		if t.kind == tLit && t.b == 0 {
			return "", false // no name holds a NUL
		}
	}
	var b strings.Builder
	body := s
	if len(s) > 1 && s[0].kind == tDStar && baseOnly(s[1:]) {
		b.WriteByte('*')
		body = s[1:]
	} else {
		b.WriteByte('/')
	}
	for _, t := range body {
		switch t.kind {
		case tLit:
			if wild && strings.IndexByte(`*?[\`, t.b) >= 0 {
				b.WriteByte('\\')
			}
			b.WriteByte(t.b)
		case tAny:
			b.WriteByte('?')
		case tStar:
			b.WriteByte('*')
		case tDStar:
			b.WriteString("**")
		case tClass:
			writeClass(&b, t.set)
		}
	}
	return b.String(), true
}

// baseOnly: no '/' and no "**": the sequence stays within one name.
func baseOnly(s seq) bool {
	for _, t := range s {
		if t.kind == tDStar || t.kind == tLit && t.b == '/' || t.kind == tAny && t.slash {
			return false
		}
	}
	return true
}

// writeClass writes an ASCII set as a bracket expression, every member
// escaped so that no byte is special inside it.
func writeClass(b *strings.Builder, set [2]uint64) {
	in := func(c int) bool { return c < 128 && set[c/64]&(1<<(c%64)) != 0 }
	b.WriteByte('[')
	for c := 0; c < 128; c++ {
		if !in(c) {
			continue
		}
		hi := c
		for in(hi + 1) {
			hi++
		}
		b.WriteByte('\\')
		b.WriteByte(byte(c))
		if hi > c {
			if hi > c+1 {
				b.WriteByte('-')
			}
			b.WriteByte('\\')
			b.WriteByte(byte(hi))
		}
		c = hi
	}
	b.WriteByte(']')
}
