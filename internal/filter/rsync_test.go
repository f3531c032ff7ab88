package filter

import (
	"math/rand"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/inopipe/inopipe/internal/event"
)

// wildmatch is a model of rsync's wildcard matching (lib/wildmatch.c), on
// bytes: "?" one byte but '/', "*" a run without '/', "**" any run,
// "[...]" one byte of a set (never '/'; "!" or "^" negates; "\" escapes),
// "\x" the byte x. The differential test checks the model against rsync.
func wildmatch(p, t string) bool {
	for len(p) > 0 {
		switch p[0] {
		case '\\':
			if len(p) < 2 || len(t) == 0 || t[0] != p[1] {
				return false
			}
			p, t = p[2:], t[1:]
		case '?':
			if len(t) == 0 || t[0] == '/' {
				return false
			}
			p, t = p[1:], t[1:]
		case '*':
			double := strings.HasPrefix(p, "**")
			rest := strings.TrimLeft(p, "*")
			for i := 0; i <= len(t); i++ {
				if wildmatch(rest, t[i:]) {
					return true
				}
				if i < len(t) && t[i] == '/' && !double {
					return false
				}
			}
			return false
		case '[':
			if len(t) == 0 || t[0] == '/' {
				return false
			}
			i := 1
			neg := i < len(p) && (p[i] == '!' || p[i] == '^')
			if neg {
				i++
			}
			matched := false
			var prev int = -1
			first := true
			for ; i < len(p) && (first || p[i] != ']'); i++ {
				first = false
				c := p[i]
				if c == '\\' && i+1 < len(p) {
					i++
					c = p[i]
				} else if c == '-' && prev >= 0 && i+1 < len(p) && p[i+1] != ']' {
					i++
					hi := p[i]
					if hi == '\\' && i+1 < len(p) {
						i++
						hi = p[i]
					}
					if t[0] >= byte(prev) && t[0] <= hi {
						matched = true
					}
					prev = -1
					continue
				}
				if t[0] == c {
					matched = true
				}
				prev = int(c)
			}
			if i >= len(p) {
				return false // no closing "]"
			}
			if matched == neg {
				return false
			}
			p, t = p[i+1:], t[1:]
		default:
			if len(t) == 0 || t[0] != p[0] {
				return false
			}
			p, t = p[1:], t[1:]
		}
	}
	return len(t) == 0
}

// ruleMatches models rsync's rule_matches for the patterns Rules makes:
// "/..." anchored at the root, otherwise on the last name; a trailing "/"
// for directories only; without * ? [ a plain comparison.
func ruleMatches(pattern, path string, dir bool) bool {
	if len(pattern) > 1 && strings.HasSuffix(pattern, "/") {
		if !dir {
			return false
		}
		pattern = strings.TrimSuffix(pattern, "/")
	}
	name := path
	anchored := strings.HasPrefix(pattern, "/")
	if anchored {
		pattern = pattern[1:]
	} else if !strings.Contains(pattern, "/") && !strings.Contains(pattern, "**") {
		name = path[strings.LastIndexByte(path, '/')+1:]
	} else {
		panic("Rules made an unanchored pattern with a slash: " + pattern)
	}
	if !strings.ContainsAny(pattern, "*?[") {
		return name == pattern
	}
	return wildmatch(pattern, name)
}

// rsyncSelects models what rsync does with the rules: the first rule that
// matches decides; an excluded directory hides everything under it.
func rsyncSelects(r event.Rules, path string, dir bool) bool {
	type rule struct {
		include bool
		pat     string
	}
	var list []rule
	for _, p := range r.Exclude {
		list = append(list, rule{false, p})
	}
	if r.Include != nil {
		list = append(list, rule{true, "*/"})
		for _, p := range r.Include {
			list = append(list, rule{true, p})
		}
		list = append(list, rule{false, "*"})
	}
	one := func(p string, dir bool) bool {
		for _, r := range list {
			if ruleMatches(r.pat, p, dir) {
				return r.include
			}
		}
		return true
	}
	for i := 0; i < len(path); i++ {
		if path[i] == '/' && !one(path[:i], true) {
			return false
		}
	}
	return one(path, dir)
}

func set(t testing.TB, exclude, include []string, temp, icase bool) *Set {
	t.Helper()
	s := &Set{Temp: temp}
	if err := Compile(&s.Exclude, exclude, icase, "test"); err != nil {
		t.Fatal(err)
	}
	if err := Compile(&s.Include, include, icase, "test"); err != nil {
		t.Fatal(err)
	}
	return s
}

func decide(s *Set, path string, dir bool) bool {
	op := event.Create
	if dir {
		op |= event.IsDir
	}
	keep, _ := s.Decide(&event.Event{Root: "/r/", Path: "/r/" + path, Op: op})
	return keep
}

func TestTranslate(t *testing.T) {
	cases := []struct {
		re          string
		files, dirs []string
	}{
		{`^cache/`, []string{"/cache/**"}, []string{"/cache/**", "/cache"}},
		{`\.swp$`, []string{"*.swp"}, nil},
		{`(^|/)cache/$`, nil, []string{"/cache", "/**/cache"}},
		{`^info/*`, []string{"/info**", "/info/**"}, []string{"/info**", "/info/**", "/info"}},
		{`^(?:(.*)\.gz)$`, []string{"*.gz"}, nil},
		{`^(?:^static/*)$`, []string{"/static"}, []string{"/static"}},
		{`\.(tmp|bak)$`, []string{"*.tmp", "*.bak"}, nil},
		{`^a\*b$`, []string{`/a\*b`}, nil},
		{`^a\\b$`, []string{`/a\b`}, nil},
		{`^[0-9]+\.log$`, nil, nil}, // a repetition of a class: refused
		{`node_modules`, []string{"/**node_modules**"}, []string{"/**node_modules**"}},
		{`^.+\.o$`, []string{"/?**.o", "//**.o"}, nil},
	}
	for _, c := range cases {
		t.Run(c.re, func(t *testing.T) {
			f, d, err := Translate("(?s)" + c.re)
			if c.files == nil && c.dirs == nil {
				if err == nil {
					t.Errorf("%s: translated to %q %q, want a refusal", c.re, f, d)
				}
				return
			}
			if err != nil || !slices.Equal(f, c.files) || !slices.Equal(d, c.dirs) {
				t.Errorf("%s: files %q dirs %q (%v), want %q %q", c.re, f, d, err, c.files, c.dirs)
			}
		})
	}
}

// TestRules: what evfilter's usual options become.
func TestRules(t *testing.T) {
	cases := []struct {
		set              *Set
		exclude, include []string
	}{
		{set(t, []string{`^cache/`}, nil, false, false), []string{"/cache/"}, nil},
		{set(t, []string{`(^|/)\.git/`, `\.swp$`}, nil, false, false), []string{"/.git/", "/**/.git/", "*.swp"}, nil},
		{set(t, nil, []string{`\.html$`}, false, false), nil, []string{"*.html"}},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.exclude, " "), func(t *testing.T) {
			r, errs := c.set.Rules()
			if len(errs) > 0 || !slices.Equal(r.Exclude, c.exclude) || !slices.Equal(r.Include, c.include) {
				t.Errorf("%v: %q %q %v, want %q %q", c.set.Exclude, r.Exclude, r.Include, errs, c.exclude, c.include)
			}
		})
	}
	s := set(t, []string{`^[0-9]+\.log$`, `^ok/`}, nil, false, false)
	r, errs := s.Rules()
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), `[0-9]+`) || !slices.Equal(r.Exclude, []string{"/ok/"}) {
		t.Errorf("untranslatable rule: %q %v", r.Exclude, errs)
	}
}

// TestTempGlobs: the --temp patterns select exactly what IsTemp says.
func TestTempGlobs(t *testing.T) {
	names := []string{"", ".", "..", "~", "#", "##", "#a#", ".#", ".#x", "4913", "49130", "a~", ".a.swp", ".swp", "..swp", ".a.swq", ".a.swx",
		".a.swa", "sedABC123", "sedabcdef", "sed", "sedABC12", ".a.Ab12Cd", ".a.abcdef", "..Ab12Cd", ".~lock.x#", ".~lock.#", ".goutputstream-AB12CD",
		".goutputstream-AB12C", ".htaccess", "index.html", ".config.backup", "a.b.c", "x.Ab12Cd", ".x.y.Ab12Cd", "日本語~", ".日.AB12cd", ".~lock.aB3xyz"}
	rng := rand.New(rand.NewSource(1))
	const alpha = ".~#sedAB3a4913lockgoutputstream-wpx"
	for i := 0; i < 20000; i++ {
		b := make([]byte, 1+rng.Intn(12))
		for j := range b {
			b[j] = alpha[rng.Intn(len(alpha))]
		}
		names = append(names, string(b))
	}
	for _, n := range names {
		if n == "" {
			continue
		}
		glob := false
		for _, g := range TempGlobs {
			if ruleMatches(g, n, false) {
				glob = true
			}
		}
		if glob != IsTemp(n) {
			t.Errorf("%q: TempGlobs %v, IsTemp %v", n, glob, IsTemp(n))
		}
	}
}

// ruleSets are the rule sets of the tests: tutorials', sersync's stock
// patterns as sersync2inopipe writes them, --temp, includes, odd names.
var ruleSets = []struct {
	exclude, include []string
	temp, icase      bool
}{
	{exclude: []string{`^cache/`}, temp: true},
	{exclude: []string{`\.swp$`, `~$`}},
	{exclude: []string{`(^|/)\.git/`, `(^|/)node_modules/`}},
	{exclude: []string{`^(?:(.*)\.svn)$`, `^(?:(.*)\.gz)$`, `^(?:^info/*)$`, `^(?:^static/*)$`}},
	{exclude: []string{`^info/*`, `^static/*`}},
	{exclude: []string{`cache`}},
	{exclude: []string{`^a/b$`, `/x$`}},
	{exclude: []string{`\.(tmp|bak|log)$`}, include: []string{`\.html$`, `^a/`}},
	{include: []string{`\.html?$`}},
	{exclude: []string{`^.+\.o$`, `é`}, temp: true},
	{exclude: []string{`SWP$`, `^CACHE/`}, icase: true},
	{exclude: []string{`a\*b|q\[1\]|back\\slash`}},
	{exclude: []string{`^[^/]*/[^/]*\.txt$`}},
	{exclude: []string{`.*x.*`}},
	{exclude: []string{`^(a|b)/(c|d)/`}},
	{exclude: []string{`new\nline`}},
}

// names are the path elements of the corpus: plain, temp, sersync's
// examples, and bytes that are special to rsync's patterns.
var names = []string{"a", "b", "c", "d", "x", "cache", "CACHE", "x.swp", ".x.swp", "X.SWP", "foo~", "sedAb12Cd", ".x.Ab12Cd", "info",
	"information.html", "notes.gzip", "n.gz", ".svn", "a.svn", "static", "staticfile.txt", "é.txt", "index.html", "i.htm",
	"a b", "q[1]", "a*b", "back\\slash", "new\nline", "m.o", ".git", "node_modules", "x.tmp", "t.log", "4913"}

// corpus makes n random relative paths (depth 1 to 3) with a type each:
// a name is a directory wherever it has children.
func corpus(rng *rand.Rand, n int) map[string]bool {
	paths := map[string]bool{} // path → is a directory
	for i := 0; i < n; i++ {
		depth := 1 + rng.Intn(3)
		var p string
		for j := 0; j < depth; j++ {
			if j > 0 {
				p += "/"
			}
			p += names[rng.Intn(len(names))]
			if j < depth-1 {
				paths[p] = true
			}
		}
		if _, ok := paths[p]; !ok {
			paths[p] = rng.Intn(5) == 0
		}
	}
	return paths
}

// TestRulesAgree: for every rule set and path of a random corpus, the
// rsync rules select a path exactly when Decide passes it.
func TestRulesAgree(t *testing.T) {
	rng := rand.New(rand.NewSource(2))
	paths := corpus(rng, 3000)
	for _, rs := range ruleSets {
		s := set(t, rs.exclude, rs.include, rs.temp, rs.icase)
		rules, errs := s.Rules()
		if len(errs) > 0 {
			t.Fatalf("%v: %v", rs, errs)
		}
		for p, dir := range paths {
			if got, want := rsyncSelects(rules, p, dir), decide(s, p, dir); got != want {
				t.Errorf("rules %q %q: %q (dir %v): rsync %v, evfilter %v", rules.Exclude, rules.Include, p, dir, got, want)
			}
		}
	}
}

// FuzzTranslate: whatever regular expression Translate accepts, its
// patterns select a path exactly when the regex matches it.
func FuzzTranslate(f *testing.F) {
	for _, rs := range ruleSets {
		for _, x := range rs.exclude {
			f.Add(x, "a/x.swp/b", false)
		}
	}
	f.Add(`^.\.txt$`, "é.txt", false)
	f.Add(`a.*b.c`, "a/b/c", true)
	f.Fuzz(func(t *testing.T, re, path string, dir bool) {
		if len(re) > 64 || path == "" || strings.Contains(path, "//") || strings.HasPrefix(path, "/") ||
			strings.HasSuffix(path, "/") || strings.IndexByte(path, 0) >= 0 {
			return
		}
		rx, err := regexp.Compile("(?s)" + re)
		if err != nil {
			return
		}
		files, dirs, err := Translate(rx.String())
		if err != nil {
			return
		}
		s := &Set{Exclude: []*regexp.Regexp{rx}}
		rules, errs := s.Rules()
		if len(errs) > 0 {
			t.Fatalf("Translate accepted %q but Rules refused it: %v", re, errs)
		}
		if got, want := rsyncSelects(rules, path, dir), decide(s, path, dir); got != want {
			t.Fatalf("%q → files %q dirs %q: path %q (dir %v): rsync selects %v, evfilter passes %v", re, files, dirs, path, dir, got, want)
		}
	})
}
