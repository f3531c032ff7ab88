package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
	"time"
	"unicode/utf8"
)

var t0 = time.Date(2026, 11, 21, 10, 0, 0, 123456789, time.UTC)

func TestEventRoundTrip(t *testing.T) {
	cases := []Event{
		{Time: t0, Root: "/data/", Watch: "/data/a/", Name: "f", Path: "/data/a/f", Op: CloseWrite},
		{Root: "/data/", Watch: "/data/", Name: "d", Path: "/data/d", Op: Create | IsDir, Synthetic: true},
		{Root: "/data/", Watch: "/data/", Name: "x", Path: "/data/x", Op: MovedFrom, Cookie: 4242},
		{Root: "", Watch: "", Path: "", Op: QOverflow},
		{Root: "/data/", Watch: "/data/", Path: "/data/", Op: Resync},
		{Root: "/d/", Watch: "/d/", Name: "bad\xff\xfename", Path: "/d/bad\xff\xfename", Op: Create},
		{Root: "/d/", Watch: "/d/", Name: "nl\nq\"b\\s\x01\t", Path: "/d/nl\nq\"b\\s\x01\t", Op: Modify},
		{Root: "/d/", Watch: "/d/", Name: "日本語 $(touch x) `y`", Path: "/d/日本語 $(touch x) `y`", Op: Attrib},
		{Root: "/d/", Watch: "/d/", Name: "\xed\xb2\x80", Path: "/d/\xed\xb2\x80", Op: Delete}, // CESU-encoded surrogate bytes: invalid UTF-8
	}
	for _, ev := range cases {
		t.Run(ev.Op.String()+" "+ev.Path, func(t *testing.T) {
			line := AppendEvent(nil, &ev)
			if bytes.Count(line, []byte("\n")) != 1 || line[len(line)-1] != '\n' {
				t.Fatalf("not one line: %q", line)
			}
			var rec Record
			if err := Unmarshal(line[:len(line)-1], &rec); err != nil {
				t.Fatalf("Unmarshal(%s): %v", line, err)
			}
			if rec.Kind != KindEvent || !reflect.DeepEqual(rec.Event, ev) {
				t.Errorf("round trip of %+v\n got %+v (kind %d)\nline %s", ev, rec.Event, rec.Kind, line)
			}
		})
	}
}

func TestInvalidUTF8Encoding(t *testing.T) {
	got := string(AppendString(nil, "a\xffb\xc3"))
	want := `"a\udcffb\udcc3"`
	if got != want {
		t.Fatalf("AppendString = %s, want %s", got, want)
	}
}

func TestBatchAndResultRoundTrip(t *testing.T) {
	b := Batch{Seq: 7, Root: "/data/", Sync: []string{"a/", "b\xff", "c d"}, Delete: []string{"x"}, Events: 12, First: t0, Last: t0.Add(time.Second)}
	var rec Record
	if err := Unmarshal(bytes.TrimSpace(AppendBatch(nil, &b)), &rec); err != nil {
		t.Fatal(err)
	}
	if rec.Kind != KindBatch || !reflect.DeepEqual(rec.Batch, b) {
		t.Errorf("batch round trip: got %+v want %+v", rec.Batch, b)
	}
	full := Batch{Seq: 1, Root: "/r/", Sync: []string{}, Delete: []string{}, Full: true, Events: 1}
	if err := Unmarshal(bytes.TrimSpace(AppendBatch(nil, &full)), &rec); err != nil || !reflect.DeepEqual(rec.Batch, full) {
		t.Errorf("full batch: %v %+v", err, rec.Batch)
	}
	r := Result{Seq: 3, Root: "/data/", Target: "h::m", Exit: 10, Paths: 4, Bytes: 99, Seconds: 0.25, Attempts: 3, Error: "daemon down", Spooled: "/s/x.json"}
	if err := Unmarshal(bytes.TrimSpace(AppendResult(nil, &r)), &rec); err != nil || rec.Kind != KindResult || !reflect.DeepEqual(rec.Result, r) {
		t.Errorf("result round trip: %v %+v", err, rec.Result)
	}
}

func TestUnmarshalErrors(t *testing.T) {
	cases := map[string]string{
		`not json`:                         "not a JSON object",
		`{}`:                               "neither",
		`{"path":"/x","events":["BOGUS"]}`: `unknown event name "BOGUS"`,
		`{"path":"/x","events":["CREATE"]} trailing`: "trailing data",
		`{"path":"/x\ud800","events":["CREATE"]}`:    "unpaired",
		`{"seq":-1}`:           "negative",
		`{"seq":1,"sync":"a"}`: "array of strings",
		`{"path":"/x","events":["CREATE"],"cookie":"1"}`: "integer",
		`{"path":"/x","events":[]}`:                      "no event names",
		`{"path":"/x`:                                    "unterminated",
	}
	for in, want := range cases {
		var rec Record
		err := Unmarshal([]byte(in), &rec)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Unmarshal(%s) = %v, want error containing %q", in, err, want)
		}
	}
}

func TestUnknownFieldsIgnored(t *testing.T) {
	var rec Record
	in := `{"future":{"a":[1,2,{"b":null}],"c":"d"},"path":"/x/y","root":"/x/","events":["CREATE"],"n":-1.5e3,"t":true}`
	if err := Unmarshal([]byte(in), &rec); err != nil {
		t.Fatal(err)
	}
	if rec.Event.Path != "/x/y" || rec.Event.Op != Create {
		t.Errorf("got %+v", rec.Event)
	}
}

func TestEventNamesOrder(t *testing.T) {
	// The order inotifywait 3.22 prints.
	cases := map[Op]string{
		CloseWrite:               "CLOSE_WRITE,CLOSE",
		CloseNowrite | IsDir:     "CLOSE_NOWRITE,CLOSE,ISDIR",
		Create | IsDir:           "CREATE,ISDIR",
		MovedFrom | IsDir:        "MOVED_FROM,ISDIR",
		DeleteSelf:               "DELETE_SELF",
		Access | Modify | Attrib: "ACCESS,MODIFY,ATTRIB",
		MoveSelf | IsDir:         "MOVE_SELF,ISDIR",
		QOverflow:                "Q_OVERFLOW",
	}
	for op, want := range cases {
		if got := op.String(); got != want {
			t.Errorf("%#x.String() = %q, want %q", uint32(op), got, want)
		}
	}
	for _, in := range []string{"close_write", "Create,DELETE", "move", "close"} {
		if _, err := ParseOps(in); err != nil {
			t.Errorf("ParseOps(%q): %v", in, err)
		}
	}
	if _, err := ParseOps("create,,delete"); err == nil {
		t.Error("empty name accepted")
	}
	if _, err := ParseOps("nosuch"); err == nil {
		t.Error("unknown name accepted")
	}
}

// readAll decodes every record from r, collecting line errors separately.
func readAll(r io.Reader) (recs []Record, lineErrs []string, err error) {
	d := NewDecoder(r)
	for {
		var rec Record
		err := d.Next(&rec)
		if err == io.EOF {
			return recs, lineErrs, nil
		}
		var le *LineError
		if errors.As(err, &le) {
			lineErrs = append(lineErrs, le.Error())
			continue
		}
		if err != nil {
			return recs, lineErrs, err
		}
		recs = append(recs, rec)
	}
}

// TestDecoderChunking feeds the same stream whole, one byte at a time and in
// halves (test2json's even/odd split), and expects the same records.
func TestDecoderChunking(t *testing.T) {
	var in bytes.Buffer
	for i := 0; i < 5; i++ {
		ev := Event{Root: "/r/", Watch: "/r/", Name: "f\xff", Path: "/r/f\xff", Op: Create}
		in.Write(AppendEvent(nil, &ev))
	}
	in.WriteString("garbage\n\n")
	in.Write(bytes.TrimSuffix(AppendBatch(nil, &Batch{Seq: 1, Root: "/r/", Sync: []string{"a"}}), []byte("\n"))) // no final newline
	want, wantErrs, err := readAll(bytes.NewReader(in.Bytes()))
	if err != nil || len(want) != 6 || len(wantErrs) != 1 || wantErrs[0] != "line 6: not a JSON object" {
		t.Fatalf("whole: %d records, errs %q, err %v", len(want), wantErrs, err)
	}
	for name, r := range map[string]io.Reader{
		"onebyte": iotest.OneByteReader(bytes.NewReader(in.Bytes())),
		"half":    iotest.HalfReader(bytes.NewReader(in.Bytes())),
	} {
		got, gotErrs, err := readAll(r)
		if err != nil || !reflect.DeepEqual(got, want) || !reflect.DeepEqual(gotErrs, wantErrs) {
			t.Errorf("%s: records differ (%v)", name, err)
		}
	}
}

// TestLargeLine is gron's large-line case: one batch of 100,000 paths on
// one line (several MiB), well past bufio.Scanner's 64 KiB default.
func TestLargeLine(t *testing.T) {
	f, err := os.Open("testdata/large-line.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, errs, err := readAll(f)
	if err != nil || len(errs) != 0 || len(recs) != 2 {
		t.Fatalf("records %d, errs %v, err %v", len(recs), errs, err)
	}
	// The fixture is small on disk; the big line is generated from it.
	b := recs[0].Batch
	b.Sync = make([]string, 100000)
	for i := range b.Sync {
		b.Sync[i] = strings.Repeat("d", 20) + "/" + strings.Repeat("f", 20) + string(rune('a'+i%26))
	}
	line := AppendBatch(nil, &b)
	if len(line) < 4<<20 {
		t.Fatalf("line only %d bytes", len(line))
	}
	recs, errs, err = readAll(io.MultiReader(bytes.NewReader(line), strings.NewReader(`{"path":"/a","events":["CREATE"]}`+"\n")))
	if err != nil || len(errs) != 0 || len(recs) != 2 || len(recs[0].Batch.Sync) != 100000 || recs[1].Event.Path != "/a" {
		t.Fatalf("large line: %d records, errs %v, err %v", len(recs), errs, err)
	}
}

func TestRel(t *testing.T) {
	cases := []struct {
		ev   Event
		want string
		ok   bool
	}{
		{Event{Root: "/d/", Path: "/d/a/b"}, "a/b", true},
		{Event{Root: "/d/", Path: "/d/"}, "", true},
		{Event{Root: "/d/", Path: "/d"}, "", true},
		{Event{Root: "/d/", Path: "/e/x"}, "/e/x", false},
		{Event{Root: "/d/f", Path: "/d/f"}, "", true},
	}
	for _, c := range cases {
		t.Run(c.ev.Root+"|"+c.ev.Path, func(t *testing.T) {
			got, ok := c.ev.Rel()
			if got != c.want || ok != c.ok {
				t.Errorf("Rel(%q,%q) = %q,%v want %q,%v", c.ev.Root, c.ev.Path, got, ok, c.want, c.ok)
			}
		})
	}
}

func FuzzEventRoundTrip(f *testing.F) {
	f.Add("/data/", "/data/a/", "f\xff", uint32(CloseWrite), uint32(0), true, int64(0))
	f.Add("", "", "", uint32(QOverflow), uint32(7), false, int64(1))
	f.Add("/d/", "/d/", "\"\\\n\u2028\x00", uint32(Create|IsDir), uint32(1), false, int64(1e18))
	f.Fuzz(func(t *testing.T, root, watch, name string, op, cookie uint32, synth bool, nanos int64) {
		op &= uint32(AllEvents | IsDir | QOverflow | Resync | Unmount | Ignored)
		if op == 0 {
			return
		}
		ev := Event{Root: root, Watch: watch, Name: name, Path: watch + name, Op: Op(op), Cookie: cookie, Synthetic: synth}
		if nanos > 0 {
			ev.Time = time.Unix(0, nanos).UTC()
		}
		line := AppendEvent(nil, &ev)
		var rec Record
		if err := Unmarshal(line[:len(line)-1], &rec); err != nil {
			t.Fatalf("Unmarshal(%q): %v", line, err)
		}
		if !reflect.DeepEqual(rec.Event, ev) {
			t.Fatalf("round trip: got %+v want %+v", rec.Event, ev)
		}
		if again := AppendEvent(nil, &rec.Event); !bytes.Equal(again, line) {
			t.Fatalf("re-encode differs:\n%q\n%q", again, line)
		}
	})
}

// FuzzDecode checks that any line either fails cleanly or decodes to a
// record whose canonical encoding decodes back to the same record.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"time":"2026-11-21T10:00:00.1Z","root":"/d/","watch":"/d/","name":"a\udcff","path":"/d/a\udcff","events":["CREATE","ISDIR"],"synthetic":true}`))
	f.Add([]byte(`{"seq":1,"root":"/d/","sync":["a/","b"],"delete":["c"],"full":true,"events":3}`))
	f.Add([]byte(`{"seq":2,"root":"/d/","sync":["a","b"],"delete":[],"written":["a"],"events":2}`))
	f.Add([]byte(`{"seq":1,"root":"/d/","target":"h::m","ok":false,"exit":10,"seconds":1.5,"error":"x"}`))
	f.Add([]byte(`{"x":[{"y":[]}],"path":"\ud83d\ude00","events":["Q_OVERFLOW"]}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		var rec Record
		if err := Unmarshal(line, &rec); err != nil {
			return
		}
		var enc []byte
		switch rec.Kind {
		case KindEvent:
			enc = AppendEvent(nil, &rec.Event)
		case KindBatch:
			enc = AppendBatch(nil, &rec.Batch)
		case KindResult:
			enc = AppendResult(nil, &rec.Result)
		}
		var again Record
		if err := Unmarshal(enc[:len(enc)-1], &again); err != nil {
			t.Fatalf("re-decode of %q: %v", enc, err)
		}
		norm := func(r Record) Record {
			// encoding canonicalises nil lists to [] and drops Batch/Result
			// fields that do not belong to the kind
			r.Batch.Sync = append([]string{}, r.Batch.Sync...)
			r.Batch.Delete = append([]string{}, r.Batch.Delete...)
			if len(r.Batch.Written) == 0 {
				r.Batch.Written = nil // omitted when empty
			}
			switch r.Kind {
			case KindEvent:
				r.Batch, r.Result = Batch{}, Result{}
			case KindBatch:
				r.Event, r.Result = Event{}, Result{}
			case KindResult:
				r.Event, r.Batch = Event{}, Batch{}
			}
			return r
		}
		if !reflect.DeepEqual(norm(again), norm(rec)) {
			t.Fatalf("not stable:\nin  %q\nenc %q\n%+v\n%+v", line, enc, norm(rec), norm(again))
		}
	})
}

// FuzzDecodeDifferential: on valid UTF-8, every line encoding/json rejects
// is rejected here too (safety issue, case 12: the decoder accepted
// `"root":"a"b"` after a line whose root was a"b). The decoder keeps a
// cache across lines, so each input is two lines through one Decoder.
func FuzzDecodeDifferential(f *testing.F) {
	f.Add([]byte(`{"seq":1,"root":"a\"b","sync":[]}`), []byte(`{"seq":2,"root":"a"b","sync":[]}`))
	f.Add([]byte(`{"time":"2026-11-21T10:00:00Z","root":"/d/","watch":"/d/","name":"x","path":"/d/x","events":["CREATE"]}`),
		[]byte(`{"time":"2026-11-21T10:00:00Z","root":"/d/","watch":"/d/","name":"x","path":"/d/x","events":["CREATE"],}`))
	f.Add([]byte(`{"seq":1,"root":"/d/","sync":["a"],"delete":[],"full":false}`), []byte(`{"seq":1,"root":"/d/","sync":["a",],"delete":[]}`))
	f.Add([]byte(`{"seq":01,"root":"/d/"}`), []byte(`{"seq":1,"root":"/d/","x":[1,]}`))
	f.Add([]byte(`{"seq":1,"root":"/d/","sync":[]}x`), []byte(`{"seq":1,"root":"/d/","sync":[]} {}`))
	f.Fuzz(func(t *testing.T, a, b []byte) {
		if !utf8.Valid(a) || !utf8.Valid(b) || bytes.ContainsAny(a, "\r\n") || bytes.ContainsAny(b, "\r\n") {
			return
		}
		in := make([]byte, 0, len(a)+len(b)+2)
		in = append(append(append(append(in, a...), '\n'), b...), '\n')
		d := NewDecoder(bytes.NewReader(in))
		var rec Record
		for i, line := range [][]byte{a, b} {
			if len(bytes.TrimSpace(line)) == 0 {
				continue
			}
			err := d.Next(&rec)
			if err == io.EOF {
				t.Fatalf("line %d: EOF", i+1)
			}
			if err == nil && !json.Valid(line) {
				t.Fatalf("line %d %q decoded, but it is not valid JSON", i+1, line)
			}
		}
	})
}

// Each: every record to fn, malformed lines and rejected kinds to bad,
// idle before a read that may block, strict stops at the first bad line.
func TestEach(t *testing.T) {
	in := `{"seq":1,"root":"/d/","sync":[],"delete":[]}` + "\nnot json\n" + `{"seq":2,"root":"/d/","target":"x"}` + "\n" + `{"seq":3,"root":"/d/","sync":[],"delete":[]}` + "\n"
	for _, strict := range []bool{false, true} {
		d := NewDecoder(iotest.OneByteReader(strings.NewReader(in)))
		var seqs []uint64
		var bad []int
		idle := 0
		err := d.Each(strict, func() error { idle++; return nil }, func(le *LineError) { bad = append(bad, le.Line) }, func(r *Record) error {
			if r.Kind != KindBatch {
				return &LineError{Line: d.Line(), Err: errors.New("not a batch")}
			}
			seqs = append(seqs, r.Batch.Seq)
			return nil
		})
		switch {
		case !strict && (err != nil || !reflect.DeepEqual(seqs, []uint64{1, 3}) || !reflect.DeepEqual(bad, []int{2, 3})):
			t.Errorf("lenient: %v %v %v", err, seqs, bad)
		case strict && (!errors.Is(err, ErrStrict) || !reflect.DeepEqual(seqs, []uint64{1}) || !reflect.DeepEqual(bad, []int{2})):
			t.Errorf("strict: %v %v %v", err, seqs, bad)
		}
		if idle == 0 {
			t.Error("idle never called")
		}
	}
}

// A batch's rules and renames survive the codec (the spool stores batches
// with it); a rules record decodes as its own kind; bad renames are
// refused.
func TestBatchRulesRenamesRoundTrip(t *testing.T) {
	b := Batch{Seq: 3, Root: "/d/", Sync: []string{"c", "e/"}, Delete: []string{"a", "d"}, Events: 4,
		Rules:   &Rules{Exclude: []string{"/cache/", "*.swp"}, Include: []string{}},
		Renames: []Rename{{From: "a", To: "c"}, {From: "d", To: "e", Dir: true}}}
	line := AppendBatch(nil, &b)
	var rec Record
	if err := Unmarshal(line[:len(line)-1], &rec); err != nil || rec.Kind != KindBatch || !reflect.DeepEqual(rec.Batch, b) {
		t.Fatalf("%s\n%+v %v", line, rec.Batch, err)
	}
	r := AppendRules(nil, b.Rules)
	if err := Unmarshal(r[:len(r)-1], &rec); err != nil || rec.Kind != KindRules || !rec.Rules.Equal(b.Rules) {
		t.Fatalf("%s: %+v %v", r, rec, err)
	}
	for _, bad := range []string{
		`{"seq":1,"root":"/d/","sync":[],"delete":[],"renames":[{"from":"../x","to":"y"}]}`,
		`{"seq":1,"root":"/d/","sync":[],"delete":[],"renames":[{"from":"x","to":"/abs"}]}`,
		`{"seq":1,"root":"/d/","sync":[],"delete":[],"renames":[{"from":"x","to":""}]}`,
		`{"rules":{"exclude":[""]}}`,
	} {
		if err := Unmarshal([]byte(bad), &rec); err == nil {
			t.Errorf("accepted %s", bad)
		}
	}
}
