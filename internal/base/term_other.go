//go:build !linux && !darwin && !freebsd && !netbsd && !openbsd && !dragonfly

package base

func isTerminal(int) bool { return false }
