package main

import (
	"testing"

	"github.com/inopipe/inopipe/internal/clitest"
)

func TestManPageCoversFlags(t *testing.T) {
	var names []string
	for _, f := range newApp().Flags {
		names = append(names, f.Names()...)
	}
	clitest.CheckManPage(t, names, "../../man/failreplay.1")
}
