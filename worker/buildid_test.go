package worker

import (
	"encoding/binary"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
)

// The build ID is the one the go command reads from the same executable.
func TestBuildIDIsTheGoBuildID(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the build ID is read from ELF executables")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("go", "tool", "buildid", exe).Output()
	if err != nil {
		t.Fatalf("go tool buildid: %v", err)
	}
	want := strings.TrimSpace(string(out))
	if got := buildID(); got != want || got == "" {
		t.Fatalf("buildID() = %q, go tool buildid says %q", got, want)
	}
}

func TestGoBuildIDNote(t *testing.T) {
	note := func(name string, typ uint32, desc string) []byte {
		b := binary.LittleEndian.AppendUint32(nil, uint32(len(name)))
		b = binary.LittleEndian.AppendUint32(b, uint32(len(desc)))
		b = binary.LittleEndian.AppendUint32(b, typ)
		b = append(b, name...)
		for len(b)%4 != 0 {
			b = append(b, 0)
		}
		return append(b, desc...)
	}
	for _, tc := range []struct {
		name string
		note []byte
		want string
	}{
		{"go note", note("Go\x00", 4, "abc/def"), "abc/def"},
		{"other owner", note("GNU\x00", 4, "abc"), ""},
		{"other type", note("Go\x00", 3, "abc"), ""},
		{"truncated description", note("Go\x00", 4, "abc/def")[:18], ""},
		{"truncated header", []byte{4, 0, 0}, ""},
	} {
		if got := goBuildIDNote(tc.note, binary.LittleEndian); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
}
