package worker

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"os"
)

// buildID names this worker's code for Temporal: the Go build ID the
// linker wrote into the executable, a hash of everything that went into
// it. Without a build ID the SDK reads the whole executable to checksum
// it: a second of start-up for a 300 MB binary, and in measurements the
// worker then kept 30 MiB more of the binary's pages resident.
//
// It returns "" (and the SDK checksums) when the executable is not ELF or
// has no Go build ID note.
func buildID() string {
	exe, err := os.Executable()
	if err != nil {
		return ""
	}
	f, err := elf.Open(exe)
	if err != nil {
		return ""
	}
	defer f.Close()
	sec := f.Section(".note.go.buildid")
	if sec == nil {
		return ""
	}
	note, err := sec.Data()
	if err != nil {
		return ""
	}
	return goBuildIDNote(note, f.ByteOrder)
}

// goBuildIDNote reads the ELF note the Go linker writes: name "Go", type
// 4, the build ID as its description.
func goBuildIDNote(note []byte, order binary.ByteOrder) string {
	const header = 12
	if len(note) < header {
		return ""
	}
	nameSize, descSize, typ := order.Uint32(note), order.Uint32(note[4:]), order.Uint32(note[8:])
	nameEnd := header + int(nameSize)
	descStart := header + (int(nameSize)+3)&^3
	if typ != 4 || nameEnd > len(note) || !bytes.Equal(bytes.TrimRight(note[header:nameEnd], "\x00"), []byte("Go")) ||
		descStart+int(descSize) > len(note) {
		return ""
	}
	return string(note[descStart : descStart+int(descSize)])
}
