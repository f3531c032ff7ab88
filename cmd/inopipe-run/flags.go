package main

import (
	"github.com/urfave/cli/v2"

	"github.com/inopipe/inopipe/internal/base/pushflags"
)

type flagKind int

const (
	boolean flagKind = iota
	valued
)

// sharedFlags are the option names (every alias) rpush and failreplay
// share, and whether each takes a value.
var sharedFlags = func() map[string]flagKind {
	m := map[string]flagKind{}
	for _, f := range pushflags.Flags() {
		k := valued
		if _, ok := f.(*cli.BoolFlag); ok {
			k = boolean
		}
		for _, n := range f.Names() {
			m[n] = k
		}
	}
	return m
}()
