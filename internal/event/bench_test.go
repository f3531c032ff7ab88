package event

import (
	"testing"
	"time"
)

var benchEv = Event{Time: time.Now().UTC(), Root: "/srv/data/", Watch: "/srv/data/www/img/2026/", Name: "picture-0001.png",
	Path: "/srv/data/www/img/2026/picture-0001.png", Op: CloseWrite}

func BenchmarkEncodeEvent(b *testing.B) {
	var buf []byte
	for i := 0; i < b.N; i++ {
		buf = AppendEvent(buf[:0], &benchEv)
	}
	b.SetBytes(int64(len(buf)))
}

func BenchmarkDecodeEvent(b *testing.B) {
	line := AppendEvent(nil, &benchEv)
	line = line[:len(line)-1]
	var rec Record
	b.SetBytes(int64(len(line)))
	for i := 0; i < b.N; i++ {
		if err := Unmarshal(line, &rec); err != nil {
			b.Fatal(err)
		}
	}
}
