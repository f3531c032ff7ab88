package event_test

import (
	"os"

	"github.com/inopipe/inopipe/internal/event"
)

func ExampleEncoder() {
	enc := event.NewEncoder(os.Stdout)
	enc.Event(&event.Event{
		Root: "/data/", Watch: "/data/www/", Name: "caf\xe9.html", Path: "/data/www/caf\xe9.html",
		Op: event.CloseWrite,
	})
	enc.Batch(&event.Batch{Seq: 1, Root: "/data/", Sync: []string{"www/"}, Delete: []string{"old.html"}, Events: 5})
	// Output:
	// {"root":"/data/","watch":"/data/www/","name":"caf\udce9.html","path":"/data/www/caf\udce9.html","events":["CLOSE_WRITE","CLOSE"]}
	// {"seq":1,"root":"/data/","sync":["www/"],"delete":["old.html"],"events":5}
}
