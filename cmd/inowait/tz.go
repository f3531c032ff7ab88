package main

import (
	"encoding/binary"
	"os"
	"strings"
	"time"
)

// localZone is the zone %T is printed in: time.Local, except that a POSIX
// TZ string (TZ=CST-8, TZ=EST5EDT,M3.2.0,M11.1.0 — common in tutorials),
// which Go does not read and would print as UTC, is honoured as glibc
// honours it.
func localZone() *time.Location {
	tz, ok := os.LookupEnv("TZ")
	tz = strings.TrimPrefix(tz, ":")
	if !ok || tz == "" || tz == "UTC" || time.Local.String() != "UTC" {
		return time.Local // unset, UTC, or a zone name Go has loaded
	}
	if loc, err := time.LoadLocation(tz); err == nil {
		return loc
	}
	if loc, err := time.LoadLocationFromTZData(tz, posixTZData(tz)); err == nil {
		return loc
	}
	return time.Local
}

// posixTZData is a TZif file (RFC 8536, version 2) with no transitions and
// one placeholder zone, whose footer is the POSIX TZ string itself: Go's
// LoadLocationFromTZData then computes every time from the footer, which
// is how it reads the rules of the zoneinfo database.
func posixTZData(tz string) []byte {
	header := func(b []byte) []byte {
		b = append(b, "TZif2"...)
		b = append(b, make([]byte, 15)...)
		// isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt
		for _, n := range []uint32{0, 0, 0, 0, 1, 4} {
			b = binary.BigEndian.AppendUint32(b, n)
		}
		// one ttinfo: utoff 0, isdst 0, desigidx 0; the designation "UTC"
		b = append(b, 0, 0, 0, 0, 0, 0)
		return append(b, "UTC\x00"...)
	}
	b := header(nil) // version 1 block
	b = header(b)    // version 2 block (no 64-bit times: none to list)
	return append(append(append(b, '\n'), tz...), '\n')
}
