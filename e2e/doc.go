// Package e2e holds the end-to-end tests of the whole pipeline: real
// inotify, real processes piped together, a real rsync daemon on 127.0.0.1.
// The tests are behind the e2e build tag (make e2e); make test runs them.
package e2e
