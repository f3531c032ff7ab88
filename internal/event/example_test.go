package event_test

import (
	"os"

	"github.com/inopipe/inopipe/internal/event"
)

// Each Append function renders one complete line, written with one Write,
// so lines from several goroutines sharing a writer never interleave.
// A name that is not UTF-8 keeps its bytes (\udce9 is the byte 0xe9).
func ExampleAppendEvent() {
	line := event.AppendEvent(nil, &event.Event{
		Root: "/data/", Watch: "/data/www/", Name: "caf\xe9.html", Path: "/data/www/caf\xe9.html",
		Op: event.CloseWrite,
	})
	os.Stdout.Write(line)
	os.Stdout.Write(event.AppendBatch(nil, &event.Batch{Seq: 1, Root: "/data/", Sync: []string{"www/"}, Delete: []string{"old.html"}, Events: 5}))
	// Output:
	// {"root":"/data/","watch":"/data/www/","name":"caf\udce9.html","path":"/data/www/caf\udce9.html","events":["CLOSE_WRITE","CLOSE"]}
	// {"seq":1,"root":"/data/","sync":["www/"],"delete":["old.html"],"events":5}
}
