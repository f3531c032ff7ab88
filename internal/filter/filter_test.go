package filter

import (
	"regexp"
	"strings"
	"testing"

	"github.com/inopipe/inopipe/internal/event"
)

func ev(path string, op event.Op) *event.Event {
	return &event.Event{Root: "/data/", Path: path, Op: op}
}

func TestDecide(t *testing.T) {
	re := func(ps ...string) []*regexp.Regexp {
		var out []*regexp.Regexp
		if err := Compile(&out, ps, false, "test"); err != nil {
			t.Fatal(err)
		}
		return out
	}
	cases := []struct {
		name   string
		set    Set
		ev     *event.Event
		keep   bool
		reason string
	}{
		{"zero set passes", Set{}, ev("/data/a", event.Create), true, ReasonPass},
		{"relative anchor", Set{Exclude: re(`^static/`)}, ev("/data/static/x.css", event.Modify), false, ReasonExclude},
		{"relative anchor misses deeper", Set{Exclude: re(`^static/`)}, ev("/data/www/static/x", event.Modify), true, ReasonPass},
		{"full path", Set{Exclude: re(`^/data/static/`), Full: true}, ev("/data/static/x", event.Modify), false, ReasonExclude},
		{"dir gets trailing slash", Set{Exclude: re(`(^|/)cache/$`)}, ev("/data/a/cache", event.Create|event.IsDir), false, ReasonExclude},
		{"excluded dir excludes subtree", Set{Exclude: re(`(^|/)cache/$`)}, ev("/data/a/cache/deep/f", event.Modify), false, ReasonExclude},
		{"file named like dir kept", Set{Exclude: re(`(^|/)cache/$`)}, ev("/data/a/cache", event.Create), true, ReasonPass},
		{"swp", Set{Exclude: re(`\.swp$`)}, ev("/data/.x.swp", event.Create), false, ReasonExclude},
		{"include only", Set{Include: re(`\.html$`)}, ev("/data/a.css", event.Modify), false, ReasonInclude},
		{"include match", Set{Include: re(`\.html$`)}, ev("/data/a.html", event.Modify), true, ReasonPass},
		{"exclude beats include", Set{Include: re(`\.html$`), Exclude: re(`^tmp/`)}, ev("/data/tmp/a.html", event.Modify), false, ReasonExclude},
		{"event type", Set{Events: event.CloseWrite | event.Delete}, ev("/data/a", event.Open), false, ReasonEvent},
		{"event type kept", Set{Events: event.CloseWrite}, ev("/data/a", event.CloseWrite), true, ReasonPass},
		{"overflow never filtered", Set{Exclude: re(`.*`), Events: event.Create}, &event.Event{Op: event.QOverflow}, true, ReasonControl},
		{"resync never filtered", Set{Include: re(`^nothing$`)}, &event.Event{Root: "/data/", Path: "/data/", Op: event.Resync}, true, ReasonControl},
		{"root delete_self passes", Set{Exclude: re(`.*`)}, &event.Event{Root: "/data/", Path: "/data/", Op: event.DeleteSelf}, true, ReasonControl},
		{"temp", Set{Temp: true}, ev("/data/www/.index.html.swp", event.Create), false, ReasonTemp},
		{"htaccess kept", Set{Temp: true}, ev("/data/www/.htaccess", event.Create), true, ReasonPass},
		{"outside root", Set{Exclude: re(`x`)}, &event.Event{Root: "/data/", Path: "/other/x", Op: event.Create}, false, ReasonOutside},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			keep, reason := c.set.Decide(c.ev)
			if keep != c.keep || reason != c.reason {
				t.Errorf("%s: Decide = %v,%s want %v,%s", c.name, keep, reason, c.keep, c.reason)
			}
		})
	}
}

func TestIsTemp(t *testing.T) {
	temp := []string{".index.html.swp", ".x.swo", ".x.swx", "notes.txt~", "4913", "#draft#", ".#draft", "sedAb12Cd", "sed0a1b2c",
		".index.html.Xa3b9Q", ".~lock.report.odt#", ".goutputstream-AB12CD"}
	keep := []string{".htaccess", ".config.backup", "sedentary", "index.html", ".env", "swp", "4913.txt", ".gitignore", "a.b.c", "README"}
	for _, n := range temp {
		if !IsTemp(n) {
			t.Errorf("IsTemp(%q) = false, want true", n)
		}
	}
	for _, n := range keep {
		if IsTemp(n) {
			t.Errorf("IsTemp(%q) = true, want false", n)
		}
	}
}

func TestReadPatterns(t *testing.T) {
	got, err := readPatterns(strings.NewReader("# comment\n\n^a/\n  # indented comment\n\\.tmp$\n"))
	if err != nil || len(got) != 2 || got[0] != "^a/" || got[1] != `\.tmp$` {
		t.Fatalf("got %q, %v", got, err)
	}
	if _, err := readPatterns(strings.NewReader("ok\n(\n")); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("bad pattern: %v", err)
	}
}

// TestIsTempMatchesPatterns: the hand-coded matcher agrees with the
// documented regular expressions (plus the mixed-case rule) on a corpus.
func TestIsTempMatchesPatterns(t *testing.T) {
	var res []*regexp.Regexp
	for _, p := range TempPatterns {
		res = append(res, regexp.MustCompile(p))
	}
	sed := regexp.MustCompile(`^sed([A-Za-z0-9]{6})$`)
	rs := regexp.MustCompile(`^\..+\.([A-Za-z0-9]{6})$`)
	ref := func(n string) bool {
		if m := sed.FindStringSubmatch(n); m != nil {
			return mixed(m[1])
		}
		if m := rs.FindStringSubmatch(n); m != nil && mixed(m[1]) {
			return true
		}
		for _, re := range res[:len(res)-2] {
			if re.MatchString(n) {
				return true
			}
		}
		return false
	}
	corpus := []string{"", ".", "..", "~", "#", "##", "#a#", ".#", ".#x", "4913", "49130", "a~", ".a.swp", ".swp", "..swp", ".a.swq", ".a.swx",
		".a.swa", "sedABC123", "sedabcdef", "sed", "sedABC12", ".a.Ab12Cd", ".a.abcdef", "..Ab12Cd", ".~lock.x#", ".~lock.#", ".goutputstream-AB12CD",
		".goutputstream-AB12C", ".htaccess", "index.html", ".config.backup", "a.b.c", "x.Ab12Cd", ".x.y.Ab12Cd", "日本語~", ".日.AB12cd"}
	for _, n := range corpus {
		if IsTemp(n) != ref(n) {
			t.Errorf("IsTemp(%q) = %v, patterns say %v", n, IsTemp(n), ref(n))
		}
	}
}
