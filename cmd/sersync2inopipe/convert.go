package main

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/inopipe/inopipe/internal/rsync"
	"github.com/inopipe/inopipe/internal/runconfig"
)

// localPath is one <localpath watch> with its <remote>s.
type localPath struct {
	Watch  string `xml:"watch,attr"`
	Remote []struct {
		IP   string `xml:"ip,attr"`
		Name string `xml:"name,attr"`
	} `xml:"remote"`
}

// The parts of sersync's confxml.xml (format 2.5) that mean something for
// replication. Attribute names are sersync's own.
type onOff struct {
	Start string `xml:"start,attr"`
}

// on is sersync's own test: exactly "true" (it compares with strcmp, so
// start="TRUE" was off for sersync, and is off here).
func (o *onOff) on() bool { return o != nil && o.Start == "true" }

type expr struct {
	Expression string `xml:"expression,attr"`
}

type config struct {
	charsetNote string   // a warning about the file's encoding, if any
	XMLName     xml.Name `xml:"head"`
	Version     string   `xml:"version,attr"`
	Filter      struct {
		onOff
		Exclude []expr `xml:"exclude"`
	} `xml:"filter"`
	Inotify struct {
		Delete       *onOff `xml:"delete"`
		CreateFolder *onOff `xml:"createFolder"`
		CreateFile   *onOff `xml:"createFile"`
		CloseWrite   *onOff `xml:"closeWrite"`
		MoveFrom     *onOff `xml:"moveFrom"`
		MoveTo       *onOff `xml:"moveTo"`
		Attrib       *onOff `xml:"attrib"`
		Modify       *onOff `xml:"modify"`
	} `xml:"inotify"`
	Sersync struct {
		LocalPath []localPath `xml:"localpath"`
		Rsync     struct {
			CommonParams struct {
				Params string `xml:"params,attr"`
			} `xml:"commonParams"`
			Auth struct {
				onOff
				Users        string `xml:"users,attr"`
				PasswordFile string `xml:"passwordfile,attr"`
			} `xml:"auth"`
			Port struct {
				onOff
				Port string `xml:"port,attr"`
			} `xml:"userDefinedPort"`
			Timeout struct {
				onOff
				Time string `xml:"time,attr"`
			} `xml:"timeout"`
			SSH onOff `xml:"ssh"`
		} `xml:"rsync"`
		FailLog struct {
			Path          string `xml:"path,attr"`
			TimeToExecute string `xml:"timeToExecute,attr"`
		} `xml:"failLog"`
		Crontab struct {
			onOff
			Schedule string `xml:"schedule,attr"`
			Filter   struct {
				onOff
				Exclude []expr `xml:"exclude"`
			} `xml:"crontabfilter"`
		} `xml:"crontab"`
		Plugin struct {
			onOff
			Name string `xml:"name,attr"`
		} `xml:"plugin"`
	} `xml:"sersync"`
}

// setting is one line of the env file, with an optional comment above.
type setting struct{ key, value, comment string }

// result is the conversion: env file lines, timer/cron advice, warnings.
type result struct {
	refused  []error // values that cannot be written (see set)
	settings []setting
	schedule []string // comment lines: timers and cron
	warnings []string
}

// set adds a setting. A value from the XML is data for one key: a control
// character in it (a newline from &#10; would start a line of its own, a
// new KEY=) is refused, and the whole file is checked by inopipe-run's own
// parser at the end (check).
func (r *result) set(key, value, comment string) {
	if i := strings.IndexFunc(value, func(c rune) bool { return c < 0x20 || c == 0x7f }); i >= 0 {
		r.refused = append(r.refused, fmt.Errorf("%s: the value from the XML holds control character %q: %q", key, value[i], value))
		return
	}
	r.settings = append(r.settings, setting{key, value, comment})
}

// check refuses a conversion whose env file inopipe-run would not accept
// as it is meant: every refusal collected by set, then the file itself
// through runconfig.Parse (options where targets belong, relative paths).
func (r *result) check(name string) error {
	if len(r.refused) > 0 {
		return errors.Join(r.refused...)
	}
	var b bytes.Buffer
	render(&b, r, name, "check")
	if _, err := runconfig.Parse(name+".env", b.Bytes()); err != nil {
		return fmt.Errorf("the converted file would be refused by inopipe-run: %w", err)
	}
	return nil
}

func (r *result) warnf(format string, a ...any) {
	r.warnings = append(r.warnings, fmt.Sprintf(format, a...))
}

// parse reads confxml.xml. sersync ships it with an ISO-8859-1 header,
// but sersync itself never decodes it: it takes the bytes as they are, and
// on today's systems the paths in it are UTF-8 (/data/网站). So a file that
// is valid UTF-8 is read as UTF-8 whatever its header says (decoding it as
// Latin-1 turned /data/网站 into mojibake, a SOURCE that does not exist);
// only bytes that are not UTF-8 are read as Latin-1. Either way a warning
// says so when there is anything beyond ASCII.
func parse(data []byte) (*config, error) {
	d := xml.NewDecoder(bytes.NewReader(data))
	var charsetNote string
	d.CharsetReader = func(charset string, in io.Reader) (io.Reader, error) {
		switch strings.ToLower(charset) {
		case "iso-8859-1", "latin1", "latin-1":
			b, err := io.ReadAll(in)
			if err != nil {
				return nil, err
			}
			ascii := !bytes.ContainsFunc(b, func(r rune) bool { return r >= 0x80 })
			if ascii || utf8.Valid(b) {
				if !ascii {
					charsetNote = "the file says ISO-8859-1 but holds UTF-8 text beyond ASCII: read as UTF-8, byte for byte as sersync uses it; check SOURCE and TARGETS"
				}
				return bytes.NewReader(b), nil
			}
			charsetNote = "the file holds bytes that are not UTF-8: read as ISO-8859-1, as its header says; check SOURCE and TARGETS"
			var out []byte
			for _, c := range b {
				out = utf8.AppendRune(out, rune(c))
			}
			return bytes.NewReader(out), nil
		case "gbk", "gb2312", "gb18030":
			return nil, fmt.Errorf("encoding %q: convert the file to UTF-8 first (iconv -f %s -t UTF-8)", charset, charset)
		}
		return nil, fmt.Errorf("unsupported encoding %q", charset)
	}
	var c config
	if err := d.Decode(&c); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("not a sersync configuration: no XML element in it (empty, or not XML)")
		}
		return nil, fmt.Errorf("not a sersync configuration: %w", err)
	}
	c.charsetNote = charsetNote
	if c.XMLName.Local != "head" {
		return nil, fmt.Errorf("not a sersync configuration: the top element is <%s>, not <head>", c.XMLName.Local)
	}
	// sersync 2.5.x (2.5, 2.5.4 ...) all write format 2.5.
	if c.Version != "" && c.Version != "2.5" && !strings.HasPrefix(c.Version, "2.5.") {
		return &c, fmt.Errorf("format version %q (this reads sersync's 2.5 format)", c.Version)
	}
	return &c, nil
}

// checkRemote refuses a <remote> that would not be one target: TARGETS is
// blank-separated, so a blank would add a target (or an option: "--rsync=").
// ip is a host name or address; name a daemon module (optionally with a
// path under it) or, over ssh, an absolute path.
func checkRemote(ip, name string, ssh bool) error {
	blank := func(c rune) bool { return c <= ' ' || c == 0x7f }
	switch {
	case strings.IndexFunc(ip+name, blank) >= 0:
		return fmt.Errorf("<remote ip=%q name=%q>: a blank or control character", ip, name)
	case strings.HasPrefix(ip, "-") || strings.ContainsAny(ip, "/:@"):
		return fmt.Errorf("<remote ip=%q>: not a host name or address", ip)
	case ssh && !strings.HasPrefix(name, "/"):
		return fmt.Errorf("<remote name=%q>: with <ssh start=true> the name is the target's absolute path", name)
	case !ssh && (strings.HasPrefix(name, "-") || strings.HasPrefix(name, "/") || strings.ContainsAny(name, ":@")):
		return fmt.Errorf("<remote name=%q>: not an rsync module name", name)
	}
	return nil
}

// rsync options rpush sets itself, or that only change rsync's own output.
const coreLetters = "artlpgoDv"

// convert maps a parsed config to inopipe settings.
// convert maps a parsed config to inopipe settings, section by section;
// the env file it renders must pass inopipe-run's own parser (check).
func convert(c *config, name, spool string) (*result, error) {
	r := &result{}
	if c.charsetNote != "" {
		r.warnf("%s", c.charsetNote)
	}
	s := &c.Sersync
	if len(s.LocalPath) == 0 || s.LocalPath[0].Watch == "" {
		return nil, fmt.Errorf("no <sersync><localpath watch=...>: nothing to replicate")
	}
	lp := s.LocalPath[0]
	if len(s.LocalPath) > 1 {
		r.warnf("%d <localpath> elements: only the first (%s) is converted; run sersync2inopipe per directory with a copy of the file", len(s.LocalPath), lp.Watch)
	}
	r.set("SOURCE", lp.Watch, "the watched directory (<localpath watch>)")

	if err := r.targets(c, lp); err != nil {
		return nil, err
	}
	r.rsyncOptions(c)
	r.filters(c)
	r.eventSwitches(c, spool)
	r.schedules(c, name)
	r.plugins(c)
	if err := r.check(name); err != nil {
		return nil, err
	}
	return r, nil
}

// targets: one per <remote>, daemon (with <auth> user and <userDefinedPort>)
// or ssh, and the password file.
func (r *result) targets(c *config, lp localPath) error {
	s := &c.Sersync
	user := ""
	if s.Rsync.Auth.on() && s.Rsync.Auth.Users != "" {
		user = s.Rsync.Auth.Users + "@"
	}
	var targets []string
	for _, rm := range lp.Remote {
		if rm.IP == "" || rm.Name == "" {
			r.warnf("<remote ip=%q name=%q> skipped: both are needed", rm.IP, rm.Name)
			continue
		}
		if err := checkRemote(rm.IP, rm.Name, s.Rsync.SSH.on()); err != nil {
			return err
		}
		switch {
		case s.Rsync.SSH.on():
			// sersync logs in as <auth users> over ssh too
			targets = append(targets, fmt.Sprintf("%s%s:%s", user, rm.IP, rm.Name))
		case s.Rsync.Port.on() && s.Rsync.Port.Port != "":
			targets = append(targets, fmt.Sprintf("rsync://%s%s:%s/%s/", user, rm.IP, s.Rsync.Port.Port, rm.Name))
		default:
			targets = append(targets, fmt.Sprintf("%s%s::%s", user, rm.IP, rm.Name))
		}
	}
	if len(targets) == 0 {
		return fmt.Errorf("no usable <remote ip name> under <localpath watch=%q>", lp.Watch)
	}
	r.set("TARGETS", strings.Join(targets, " "), "one per <remote>; rpush serves them in parallel, each with its own queue")
	if s.Rsync.Auth.on() && s.Rsync.Auth.PasswordFile != "" {
		if s.Rsync.SSH.on() {
			r.warnf("<auth passwordfile> is for rsync daemons and <ssh start=true> is set: ignored (ssh logs in as <auth users> with its key; set it up in ~/.ssh/config)")
		} else {
			r.set("PASSWORD_FILE", s.Rsync.Auth.PasswordFile, "<auth passwordfile>: must be mode 0600 and owned by the user running inopipe")
		}
	}
	return nil
}

// rsyncOptions: <commonParams> (what rpush does itself and what it
// refuses dropped), <timeout>, <delete>, and <crontabfilter> as rsync
// excludes for every run.
func (r *result) rsyncOptions(c *config) {
	s := &c.Sersync
	var rsyncOpts, rpushOpts []string
	words := strings.Fields(s.Rsync.CommonParams.Params)
	for i := 0; i < len(words); i++ {
		w := words[i]
		switch {
		case w == "-e" && i+1 < len(words):
			// the remote shell: rpush's own -e (it adds BatchMode and
			// timeouts), never an rsync option of RSYNC_OPTS
			i++
			if s.Rsync.SSH.on() {
				rpushOpts = append(rpushOpts, "--rsh", words[i])
			} else {
				r.warnf("commonParams -e %s: no remote shell without <ssh start=true>: dropped", words[i])
			}
		case strings.HasPrefix(w, "--"):
			if w == "--delete" || strings.HasPrefix(w, "--delete-") || w == "--recursive" || w == "--archive" {
				continue
			}
			if err := rsync.CheckOpts([]string{w}); err != nil {
				r.warnf("commonParams %v: dropped", err)
				continue
			}
			rsyncOpts = append(rsyncOpts, w)
		case strings.HasPrefix(w, "-"):
			keep := ""
			for _, l := range w[1:] {
				switch {
				case strings.ContainsRune(coreLetters, l):
				case l == 'u':
					r.warnf("commonParams -u (--update) dropped: it skips files that are newer on the target, so a target can stay different from the source; add --rsync-opts -u yourself if you rely on it")
				default:
					keep += string(l)
				}
			}
			if keep != "" {
				if err := rsync.CheckOpts([]string{"-" + keep}); err != nil {
					r.warnf("commonParams %v: dropped", err)
					continue
				}
				rsyncOpts = append(rsyncOpts, "-"+keep)
			}
		default:
			r.warnf("commonParams word %q is not an option: dropped", w)
		}
	}
	if s.Rsync.Timeout.on() {
		if _, err := strconv.Atoi(s.Rsync.Timeout.Time); err != nil {
			r.warnf("<timeout time=%q> is not a number of seconds: ignored", s.Rsync.Timeout.Time)
		} else {
			rpushOpts = append(rpushOpts, "--timeout", s.Rsync.Timeout.Time)
		}
	}
	if c.Inotify.Delete != nil && !c.Inotify.Delete.on() {
		rpushOpts = append(rpushOpts, "--delete=false")
	}
	// The full sync's filter: as rsync excludes, which apply to every run.
	if s.Crontab.on() && s.Crontab.Filter.on() {
		for _, e := range s.Crontab.Filter.Exclude {
			if e.Expression != "" {
				rsyncOpts = append(rsyncOpts, "--exclude="+e.Expression)
			}
		}
		r.warnf("<crontabfilter> patterns became rsync --exclude options in RSYNC_OPTS: they apply to every run, real-time and full (which is what they are for when they mirror <filter>)")
	}
	if len(rsyncOpts) > 0 {
		for _, o := range rsyncOpts {
			if strings.ContainsAny(o, " \t'\"\\;|&<>`$") {
				r.warnf("rsync option %q contains a blank or shell character: check RSYNC_OPTS quoting (rpush splits it like a shell, never runs one, and refuses ; | & < >)", o)
			}
		}
		r.set("RSYNC_OPTS", strings.Join(rsyncOpts, " "), "extra rsync options from <commonParams> (rpush sets -a -r --delete... itself)")
	}
	if len(rpushOpts) > 0 {
		r.set("RPUSH_OPTS", strings.Join(rpushOpts, " "), "")
	}
}

// filters: <filter> excludes become evfilter regexes.
func (r *result) filters(c *config) {
	if c.Filter.on() {
		var x []string
		for _, e := range c.Filter.Exclude {
			if e.Expression == "" {
				continue
			}
			if strings.ContainsAny(e.Expression, " \t\r\n\v\f") || strings.HasPrefix(e.Expression, "-") {
				r.warnf("exclude %q contains a blank or starts with '-': put it in a file and use EVFILTER_OPTS=--exclude-from FILE", e.Expression)
				continue
			}
			if _, err := regexp.Compile(e.Expression); err != nil {
				r.warnf("exclude %q is not a valid regular expression here (%v): skipped", e.Expression, err)
				continue
			}
			// sersync matches the whole path (boost::regex_match), evfilter
			// searches in it: anchored, "(.*)\.gz" keeps notes.gzip and
			// "^info/*" keeps information.html, as in sersync.
			x = append(x, "-x", "^(?:"+e.Expression+")$")
		}
		if len(x) > 0 {
			r.set("EVFILTER_OPTS", "--temp "+strings.Join(x, " "), "<filter> excludes: regular expressions matching the whole path relative to SOURCE, as sersync matches them (a directory with everything under it); --temp also drops editor temp files")
		}
	} else {
		r.set("EVFILTER_OPTS", "--temp", "editor swap and temp files never reach the targets")
	}
}

// eventSwitches: inopipe needs every event to converge; the spool and
// the window.
func (r *result) eventSwitches(c *config, spool string) {
	for _, sw := range []struct {
		name string
		v    *onOff
	}{{"createFolder", c.Inotify.CreateFolder}, {"closeWrite", c.Inotify.CloseWrite}, {"moveFrom", c.Inotify.MoveFrom}, {"moveTo", c.Inotify.MoveTo}} {
		if sw.v != nil && !sw.v.on() {
			r.warnf("<inotify><%s start=false> has no equivalent: inopipe always follows these events, or a target would drift from the source", sw.name)
		}
	}
	r.set("SPOOL", spool, "undelivered batches (sersync's failLog, as data, never as a script)")
	r.set("WINDOW", "500ms", "quiet period before a batch goes (evbatch)")
}

// schedules: <failLog> replays and <crontab> full syncs, as timers or cron
// lines in comments.
func (r *result) schedules(c *config, name string) {
	s := &c.Sersync
	replay := 60
	if s.FailLog.TimeToExecute != "" {
		n, err := strconv.Atoi(s.FailLog.TimeToExecute)
		if err != nil || n <= 0 {
			r.warnf("<failLog timeToExecute=%q> is not a number of minutes: using 60", s.FailLog.TimeToExecute)
		} else {
			replay = n
		}
	}
	if s.FailLog.Path != "" {
		r.warnf("<failLog path=%q>: inopipe keeps failures as data in SPOOL (never a shell script); old entries of that file are not imported: run one full sync after switching (failreplay --full)", s.FailLog.Path)
	}
	r.schedule = append(r.schedule,
		"# Replay failures every "+minutes(replay)+" (<failLog timeToExecute>):",
		"#   systemd: systemctl edit failreplay@"+name+".timer  ->  [Timer] OnUnitActiveSec="+strconv.Itoa(replay)+"min",
		"#            systemctl enable --now failreplay@"+name+".timer",
		r.cronLine(replay, "inopipe-run --replay /etc/inopipe/"+name+".env"))
	if s.Crontab.on() {
		n, err := strconv.Atoi(s.Crontab.Schedule)
		if err != nil || n <= 0 {
			r.warnf("<crontab schedule=%q> is not a number of minutes: using 600", s.Crontab.Schedule)
			n = 600
		}
		r.schedule = append(r.schedule,
			"# Full sync every "+minutes(n)+" (<crontab schedule>):",
			"#   systemd: systemctl edit failreplay-full@"+name+".timer  ->  [Timer] OnCalendar= (empty) and OnUnitActiveSec="+strconv.Itoa(n)+"min",
			"#            systemctl enable --now failreplay-full@"+name+".timer",
			r.cronLine(n, "inopipe-run --full /etc/inopipe/"+name+".env"))
	}
}

// plugins: sersync runs the one <sersync><plugin start=true name=…>
// names; the top-level <plugin> blocks only configure them. None is built
// in: each becomes a warning with the filter that does its job.
func (r *result) plugins(c *config) {
	s := &c.Sersync
	if s.Plugin.on() {
		switch n := s.Plugin.Name; n {
		case "command":
			r.warnf("plugin command: no built-in; read rpush's result lines instead, e.g. rpush ... | jq -r 'select(.ok) | .root' | while read -r d; do your-command; done (result lines carry root and target, never a shell)")
		case "socket":
			r.warnf("plugin socket: no built-in; tee the event stream into a socket, e.g. inowait ... | tee >(socat - TCP:host:port) | ...")
		case "refreshCDN":
			r.warnf("plugin refreshCDN: no built-in; a filter on rpush's result lines does it, e.g. | jq -r 'select(.ok)' | xargs -d '\\n' -n1 curl ... (see inopipe(7))")
		default:
			r.warnf("plugin %q: unknown, no equivalent", n)
		}
	}
}

func minutes(n int) string {
	if n%60 == 0 {
		if n == 60 {
			return "hour"
		}
		return strconv.Itoa(n/60) + " hours"
	}
	return strconv.Itoa(n) + " minutes"
}

// cron renders "every n minutes" as a crontab time field; exact is false
// when cron cannot say it (steps that do not divide the hour or day).
func cron(n int) (field string, exact bool) {
	switch {
	case n < 60 && 60%n == 0:
		return fmt.Sprintf("*/%d * * * *", n), true
	case n == 60:
		return "0 * * * *", true
	case n%60 == 0 && n < 1440 && 24%(n/60) == 0:
		return fmt.Sprintf("0 */%d * * *", n/60), true
	case n == 1440:
		return "30 3 * * *", true
	case n < 60:
		return fmt.Sprintf("*/%d * * * *", n), false
	}
	return fmt.Sprintf("0 */%d * * *", min(23, max(1, n/60))), false
}

func (r *result) cronLine(n int, cmd string) string {
	f, exact := cron(n)
	if !exact {
		r.warnf("every %s cannot be written exactly as a cron line (%q is close); the systemd timer (OnUnitActiveSec=%dmin) is exact", minutes(n), f, n)
	}
	return "#   cron:    " + f + " root " + cmd
}

// render writes the env file.
func render(w io.Writer, r *result, name, from string) {
	fmt.Fprintf(w, "# /etc/inopipe/%s.env — converted by sersync2inopipe from %s\n", name, from)
	fmt.Fprintf(w, "# Run: systemctl enable --now inopipe@%s.service   (or: inopipe-run /etc/inopipe/%s.env)\n", name, name)
	for _, s := range r.settings {
		if s.comment != "" {
			fmt.Fprintf(w, "\n# %s\n", s.comment)
		}
		fmt.Fprintf(w, "%s=%s\n", s.key, s.value)
	}
	fmt.Fprintln(w)
	for _, l := range r.schedule {
		fmt.Fprintln(w, l)
	}
	if len(r.warnings) > 0 {
		fmt.Fprintf(w, "# %d warning(s) were printed on stderr: read them before switching.\n", len(r.warnings))
	}
}
