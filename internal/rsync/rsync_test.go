package rsync

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/inopipe/inopipe/internal/event"
)

func TestParseTarget(t *testing.T) {
	cases := []struct {
		in   string
		kind Kind
		dest string
	}{
		{"backup::data", Daemon, "backup::data/"},
		{"u@10.0.0.2::data/sub", Daemon, "u@10.0.0.2::data/sub/"},
		{"rsync://u@127.0.0.1:8730/data", Daemon, "rsync://u@127.0.0.1:8730/data/"},
		{"web1:/srv/www", SSH, "web1:/srv/www/"},
		{"root@web1:/srv/www/", SSH, "root@web1:/srv/www/"},
		{"/mnt/copy", Local, "/mnt/copy/"},
		{"./rel/dir:x", Local, ""},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			tg, err := ParseTarget(c.in)
			if err != nil {
				t.Errorf("%s: %v", c.in, err)
				return
			}
			if tg.Kind != c.kind || (c.dest != "" && tg.Dest != c.dest) {
				t.Errorf("%s: got %+v", c.in, tg)
			}
		})
	}
	for _, bad := range []string{"", "::mod", "host::", "rsync://host"} {
		if _, err := ParseTarget(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestArgs(t *testing.T) {
	o := Options{Timeout: 60, ConTimeout: 10, PasswordFile: "/etc/p", Delete: true, Extra: []string{"-z"}}
	d, _ := ParseTarget("u@h::m")
	got := Args(o, d, "/data/", ModeList)
	want := []string{"-a", "-r", "--delete", "--delete-missing-args", "--force", "--from0", "--files-from=-",
		"--modify-window=-1", "--timeout=60", "--contimeout=10", "--sockopts=TCP_NODELAY", "--password-file=/etc/p", "--stats", "-z", "/data/", "u@h::m/"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("daemon list:\n got %q\nwant %q", got, want)
	}
	l, _ := ParseTarget("/mnt/x")
	got = Args(Options{Delete: true}, l, "/data", ModeFull)
	want = []string{"-a", "-r", "--delete", "--force", "--modify-window=-1", "--stats", "/data/", "/mnt/x/"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("local full:\n got %q\nwant %q", got, want)
	}
	s, _ := ParseTarget("h:/p")
	got = Args(Options{Delete: false, Rsh: "ssh -p 2222"}, s, "/data/", ModeList)
	if !contains(got, "--ignore-missing-args") || contains(got, "--delete") || !contains(got, "-e") ||
		!strings.Contains(got[indexOf(got, "-e")+1], "ssh -p 2222 -o BatchMode=yes -o ConnectTimeout=10") {
		t.Errorf("ssh no-delete: %q", got)
	}
	got = Args(Options{Delete: true}, l, "/data/", ModeDirs)
	if strings.Join(got[:5], " ") != "-a --no-r --dirs --from0 --files-from=-" || indexOf(got, "--delete") >= 0 {
		t.Errorf("ModeDirs: %q", got)
	}
	got = Args(Options{Delete: true}, l, "/data/", ModeFilter)
	if !contains(got, "--filter=merge -") || contains(got, "--files-from=-") {
		t.Errorf("filter mode: %q", got)
	}
}

func contains(ss []string, s string) bool { return indexOf(ss, s) >= 0 }
func indexOf(ss []string, s string) int {
	for i, x := range ss {
		if x == s {
			return i
		}
	}
	return -1
}

func TestStdinAndFilter(t *testing.T) {
	if got := string(Stdin([]string{"#a", ";b", "-c", "d/", "."})); got != "./#a\x00./;b\x00./-c\x00./d/\x00./\x00" {
		t.Errorf("Stdin = %q", got)
	}
	got := string(FilterRules([]string{"a/b*c", "x/"}))
	want := "+ /a/\x00+ /a/b\\*c\x00+ /a/b\\*c/***\x00+ /x\x00+ /x/***\x00- *\x00"
	if got != want {
		t.Errorf("FilterRules = %q, want %q", got, want)
	}
}

func TestClassify(t *testing.T) {
	cases := []struct {
		code   int
		stderr string
		want   Class
	}{
		{0, "", Done}, {24, "", Done}, {10, "", Retry}, {12, "", Retry}, {30, "", Retry}, {35, "", Retry}, {255, "", Retry},
		{5, "@ERROR: max connections (2) reached -- try again later", Retry},
		{5, "@ERROR: auth failed on module data", Spool}, {5, "@ERROR: Unknown module 'x'", Spool},
		{2, "rsync: [receiver] invalid file mode 00 for ./x", FilterMode}, {2, "protocol version mismatch", Spool},
		{1, "", Spool}, {4, "", Spool}, {11, "", Spool}, {23, "", Spool}, {3, "", Spool}, {ExitNotRun, "", Config}, {99, "", Spool},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%d %s", c.code, c.stderr), func(t *testing.T) {
			if got := Classify(c.code, c.stderr); got != c.want {
				t.Errorf("Classify(%d, %q) = %v, want %v", c.code, c.stderr, got, c.want)
			}
		})
	}
}

func TestSplitOpts(t *testing.T) {
	got, err := SplitOpts(`-z --bwlimit=5000 --exclude='a b'`)
	if err != nil || !reflect.DeepEqual(got, []string{"-z", "--bwlimit=5000", "--exclude=a b"}) {
		t.Errorf("got %q %v", got, err)
	}
	for _, bad := range []string{"-a ; rm -rf /", "-a | cat", "-a > /tmp/x", "-a && x", "--files-from=/etc/x", "--from0", "--daemon", "'unterminated",
		// Safety issue, case 12: every spelling of filter, file-list,
		// source-removal and delete-widening options.
		"-f '- *'", "-f'- *'", "-avf'- *'", "-azf '- *'", "-F", "-aF", "-FF", "--filter='- *'", "--filter '- *'",
		"--exclude-from=-", "--exclude-from -", "--include-from=-", "--include-from -",
		"--files-from /etc/x", "-0", "-a0", "--from0",
		"--remove-source-files", "--remove-sent-files",
		"--delete-excluded", "--delete", "--del", "--delete-after", "--delete-delay", "--delete-before", "--delete-during",
		"--ignore-errors", "--max-delete=100000", "-M--delete-excluded", "--remote-option=--delete-excluded", "-aM --delete",
		"--read-batch=x", "--write-batch=x", "--only-write-batch=x",
		"-e 'sh -c id'", "-ae ssh", "--rsh=ssh", "--server", "--sender", "-n", "-an", "--dry-run",
		"--delete-missing-args", "--ignore-missing-args",
		// found in review: with --files-from, --no-relative copies a "dir/"
		// entry into the target's root and --delete wipes the rest
		"--no-relative", "--no-R",
	} {
		if args, err := SplitOpts(bad); err == nil {
			t.Errorf("%q accepted as %q", bad, args)
		}
	}
	// Options that take an argument end a cluster: what follows is the
	// argument (-T/tmp/f is a temp dir, not -f); harmless options pass.
	for _, good := range []string{"-T/tmp/f", "-B 4096 -z", "-avz --bwlimit=100", "--exclude-from=/etc/ex", "--exclude-from /etc/ex",
		"--exclude='*.tmp'", "--temp-dir=/x/f0", "-x", "--no-perms", "--chmod=Du+x", "--partial-dir=.p", "--inplace", "--checksum", "--itemize-changes", "-i"} {
		if _, err := SplitOpts(good); err != nil {
			t.Errorf("%q refused: %v", good, err)
		}
	}
	// No expansion: $(id) and `id` stay literal words, never run.
	for in, want := range map[string][]string{"$(id)": {"$(id)"}, "`id`": {"`id`"}, "$HOME": {"$HOME"}} {
		if got, err := SplitOpts(in); err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("SplitOpts(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestNormalize(t *testing.T) {
	src := t.TempDir()
	for _, d := range []string{"keep/sub", "tree/deep"} {
		os.MkdirAll(filepath.Join(src, d), 0o755)
	}
	os.WriteFile(filepath.Join(src, "keep/f"), nil, 0o644)
	os.WriteFile(filepath.Join(src, "notdir"), nil, 0o644)
	b := &event.Batch{Root: src + "/",
		Sync:   []string{"keep/f", "keep/sub/", "keep/sub/x", "gone/a/b", "gone/c", "./keep//f", "notdir/child", "tree/deep/"},
		Delete: []string{"/etc/passwd", "../escape", "a/../../b", "tree/deep/old"},
	}
	l := Normalize(src+"/", b)
	want := []string{"gone", "keep/f", "keep/sub/", "notdir", "tree/deep/"}
	if !reflect.DeepEqual(l.Paths, want) {
		t.Errorf("Paths = %q, want %q", l.Paths, want)
	}
	if l.Missing != 2 || len(l.Errors) != 3 {
		t.Errorf("Missing %d Errors %v", l.Missing, l.Errors)
	}
}

// A directory listed without "/" changed only its attributes: it goes to
// Dirs (a run without recursion), unless it is also listed recursively or
// lies under a recursive entry.
func TestNormalizeAttributeDirs(t *testing.T) {
	src := t.TempDir()
	for _, d := range []string{"chmod/sub", "both", "rec/inner"} {
		os.MkdirAll(filepath.Join(src, d), 0o755)
	}
	b := &event.Batch{Root: src + "/", Sync: []string{"chmod", "chmod/sub", "both/", "both", "rec/", "rec/inner", "."}}
	l := Normalize(src+"/", b)
	if want := []string{"both/", "rec/"}; !reflect.DeepEqual(l.Paths, want) {
		t.Errorf("Paths = %q, want %q", l.Paths, want)
	}
	// "." is a chmod of the root itself: its attributes, never a
	// recursive --delete of the whole root (safety issue, case 1).
	if want := []string{".", "chmod", "chmod/sub"}; !reflect.DeepEqual(l.Dirs, want) {
		t.Errorf("Dirs = %q, want %q", l.Dirs, want)
	}
	if !l.Recursive() {
		t.Errorf("Recursive() = false with %q", l.Paths)
	}
	// Only "./" asks for the root recursively, and then the list says so.
	l = Normalize(src+"/", &event.Batch{Root: src + "/", Sync: []string{"./"}})
	if want := []string{"."}; !reflect.DeepEqual(l.Paths, want) || len(l.Dirs) != 0 || !l.Recursive() {
		t.Errorf("\"./\": Paths %q Dirs %q Recursive %v", l.Paths, l.Dirs, l.Recursive())
	}
	l = Normalize(src+"/", &event.Batch{Root: src + "/", Sync: []string{"chmod"}})
	if l.Recursive() {
		t.Errorf("Recursive() = true with %q", l.Paths)
	}
}

func TestEnv(t *testing.T) {
	got := Env([]string{"PATH=/bin", "RSYNC_RSH=evil", "RSYNC_PASSWORD=old", "HOME=/root"}, "new")
	if !reflect.DeepEqual(got, []string{"PATH=/bin", "HOME=/root", "RSYNC_PASSWORD=new"}) {
		t.Errorf("Env = %q", got)
	}
}

func ExampleArgs() {
	t, _ := ParseTarget("backup::data")
	fmt.Println(strings.Join(Args(Options{Timeout: 60, ConTimeout: 10, Delete: true}, t, "/srv/data/", ModeList), " "))
	fmt.Printf("%q\n", Stdin([]string{"#notes", "www/"}))
	// Output:
	// -a -r --delete --delete-missing-args --force --from0 --files-from=- --modify-window=-1 --timeout=60 --contimeout=10 --sockopts=TCP_NODELAY --stats /srv/data/ backup::data/
	// "./#notes\x00./www/\x00"
}

func TestHint(t *testing.T) {
	if h := Hint(4, "rsync: The server is configured to refuse --delete"); !strings.Contains(h, "--delete=false") {
		t.Errorf("refused delete: %q", h)
	}
	if h := Hint(4, "something else"); h != "" {
		t.Errorf("other exit 4: %q", h)
	}
}

// The real rsync's --stats: bytes sent and the deletion count of a dry run.
func TestExecRunnerStats(t *testing.T) {
	if _, err := exec.LookPath("rsync"); err != nil {
		t.Skip("rsync not installed (make deps)")
	}
	src, dst := t.TempDir(), t.TempDir()
	for _, p := range []string{"a", "d/b"} {
		os.MkdirAll(filepath.Join(dst, filepath.Dir(p)), 0o755)
		os.WriteFile(filepath.Join(dst, p), []byte("x"), 0o644)
	}
	tg, _ := ParseTarget(dst)
	run := func(o Options) Outcome {
		out := ExecRunner{}.Run(context.Background(), Run{Binary: "rsync", Args: Args(o, tg, src, ModeFull)})
		if out.Exit != 0 {
			t.Fatalf("rsync exit %d: %s", out.Exit, out.Stderr)
		}
		return out
	}
	if o := run(Options{Delete: true, DryRun: true}); o.Deleted != 3 {
		t.Fatalf("dry run: deleted %d, want 3 (a, d, d/b)", o.Deleted)
	}
	if _, err := os.Stat(filepath.Join(dst, "d/b")); err != nil {
		t.Fatal("the dry run deleted")
	}
	os.WriteFile(filepath.Join(src, "big"), make([]byte, 100<<10), 0o644)
	if o := run(Options{Delete: true}); o.Deleted != 3 || o.Bytes < 100<<10 {
		t.Fatalf("real run: deleted %d, sent %d bytes", o.Deleted, o.Bytes)
	}
	if o := run(Options{Delete: true, DryRun: true}); o.Deleted != 0 {
		t.Fatalf("second dry run: deleted %d, want 0", o.Deleted)
	}
}

// --log-files: rsync's own lines for changed files, told from --stats,
// with its \#ooo escapes undone.
func TestFiles(t *testing.T) {
	out := []byte(FileMark + ">f+++++++++ 120 www/new.html\n" +
		FileMark + "*deleting   0 old.html\n" +
		FileMark + ".d..t...... 4096 www/\n" +
		FileMark + ">f.st...... 7 odd\\#012name \\#377\n" +
		FileMark + "cL+++++++++ 6 link -> target\n" +
		"\nNumber of files: 3\nTotal bytes sent: 10\n")
	want := []FileChange{{">f+++++++++", 120, "www/new.html"}, {"*deleting", 0, "old.html"}, {".d..t......", 4096, "www/"}, {">f.st......", 7, "odd\nname \xff"}, {"cL+++++++++", 6, "link -> target"}}
	if got := Files(out); !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
	o := Options{ListFiles: true}
	tg, _ := ParseTarget("/t")
	if a := Args(o, tg, "/s/", ModeList); !slices.Contains(a, "--out-format="+FileMark+"%i %l %n%L") {
		t.Fatalf("%q", a)
	}
	o.DryRun = true
	if a := Args(o, tg, "/s/", ModeList); slices.ContainsFunc(a, func(s string) bool { return strings.HasPrefix(s, "--out-format") }) {
		t.Fatalf("dry run lists files: %q", a)
	}
}

// ExecRunner hands each file to Progress while the real rsync runs.
func TestExecRunnerProgress(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	for i := range 20 {
		os.WriteFile(filepath.Join(src, fmt.Sprintf("f%02d", i)), make([]byte, 100), 0o644)
	}
	tg, _ := ParseTarget(dst)
	var got []FileChange
	o := ExecRunner{}.Run(context.Background(), Run{Binary: "rsync", Args: Args(Options{ListFiles: true, Delete: true}, tg, src+"/", ModeFull),
		Progress: func(fc FileChange) { got = append(got, fc) }})
	if o.Exit != 0 {
		t.Fatalf("rsync: %d %s", o.Exit, o.Stderr)
	}
	files := 0
	for _, fc := range got {
		if strings.HasPrefix(fc.Change, ">f") {
			files++
			if fc.Size != 100 {
				t.Errorf("%+v", fc)
			}
		}
	}
	if files != 20 || len(o.Files) != 0 || o.Bytes <= 0 {
		t.Fatalf("%d files reported while running (%d lines; %d kept after, %d bytes from --stats)", files, len(got), len(o.Files), o.Bytes)
	}
}

// Filter mode (receivers that reject --delete-missing-args) must touch
// only the listed paths, as list mode does: copy them, delete the listed
// ones the source no longer has, and leave everything else on the target
// (and in the source) alone, whatever the names hold: a newline in a name
// must not start a rule of its own.
func TestFilterModeTouchesOnlyListed(t *testing.T) {
	if _, err := exec.LookPath("rsync"); err != nil {
		t.Skip("rsync not installed (make deps)")
	}
	src, dst := t.TempDir()+"/", t.TempDir()+"/"
	put := func(root string, paths ...string) {
		for _, p := range paths {
			must(t, os.MkdirAll(filepath.Dir(root+p), 0o755))
			must(t, os.WriteFile(root+p, []byte(p), 0o644))
		}
	}
	put(src, "new/a/f", "star*/f", "back\\slash", "nl\n- *", "not listed", "\xff[x]/f")
	put(dst, "unrelated", "new/a/stale", "gone/x", "nl\n+ /unrelated2", "unrelated2")
	list := []string{"new/", "star*/", "back\\slash", "nl\n- *", "gone", "\xff[x]/"}
	tg, _ := ParseTarget(dst)
	out := ExecRunner{}.Run(context.Background(), Run{Binary: "rsync", Args: Args(Options{Delete: true}, tg, src, ModeFilter), Stdin: FilterRules(list)})
	if out.Exit != 0 {
		t.Fatalf("rsync exit %d: %s", out.Exit, out.Stderr)
	}
	for p, want := range map[string]bool{
		"new/a/f": true, "star*/f": true, "\xff[x]/f": true, "back\\slash": true, "nl\n- *": true, // listed: copied
		"new/a/stale": false, "gone": false, // deleted: gone from the source
		"unrelated": true, "unrelated2": true, "nl\n+ /unrelated2": true, // not listed: left alone
		"not listed": false, // not listed: not sent
	} {
		if _, err := os.Lstat(dst + p); (err == nil) != want {
			t.Errorf("%q on the target: %v, want %v", p, err == nil, want)
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestHardLinks(t *testing.T) {
	for _, c := range []struct {
		args []string
		want bool
	}{
		{nil, false},
		{[]string{"-H"}, true},
		{[]string{"-aHv"}, true},
		{[]string{"--hard-links"}, true},
		{[]string{"-H", "--no-hard-links"}, false},
		{[]string{"-H", "--no-H"}, false},
		{[]string{"-B", "-H"}, false}, // -B takes the next word
		{[]string{"-BH"}, false},      // the block size, not -H
		// a value that looks like -H: taken for it, which only keeps
		// the tree in one run (the safe side)
		{[]string{"--exclude", "-H"}, true},
		{[]string{"--exclude=-H"}, false},
		{[]string{"--hard-links-x"}, false},
	} {
		if got := HardLinks(c.args); got != c.want {
			t.Errorf("HardLinks(%q) = %v, want %v", c.args, got, c.want)
		}
	}
}
