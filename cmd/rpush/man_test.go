package main

import (
	"testing"

	"github.com/inopipe/inopipe/internal/base/clitest"
)

func TestManPageCoversFlags(t *testing.T) {
	clitest.CheckManPage(t, newApp(), "../../man/rpush.1")
}
