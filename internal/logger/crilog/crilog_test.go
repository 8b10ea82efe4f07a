package crilog

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/skiff-dev/skiff/internal/logger"
)

func TestWriteEntries(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pod", "ctr", "0.log")
	w, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	ts := time.Date(2024, 1, 2, 3, 4, 5, 123456789, time.FixedZone("X", 3600))
	w.WriteEntries([]logger.Entry{
		{Stream: "stdout", Line: []byte("whole\n"), Time: ts},
		{Stream: "stdout", Line: []byte("part"), Time: ts},
	})
	w.WriteEntries([]logger.Entry{{Stream: "stderr", Line: []byte("\n"), Time: ts}})
	w.Close()
	got, _ := os.ReadFile(path)
	want := "2024-01-02T02:04:05.123456789Z stdout F whole\n" +
		"2024-01-02T02:04:05.123456789Z stdout P part\n" +
		"2024-01-02T02:04:05.123456789Z stderr F \n"
	if string(got) != want {
		t.Errorf("log:\n%s\nwant:\n%s", got, want)
	}
}

func TestReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "0.log")
	w, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	ts := time.Unix(0, 0)
	w.WriteEntries([]logger.Entry{{Stream: "stdout", Line: []byte("one\n"), Time: ts}})
	os.Rename(path, path+".1") // the kubelet rotates
	if err := w.Reopen(); err != nil {
		t.Fatal(err)
	}
	w.WriteEntries([]logger.Entry{{Stream: "stdout", Line: []byte("two\n"), Time: ts}})
	w.Close()
	old, _ := os.ReadFile(path + ".1")
	cur, _ := os.ReadFile(path)
	if string(old) != "1970-01-01T00:00:00Z stdout F one\n" || string(cur) != "1970-01-01T00:00:00Z stdout F two\n" {
		t.Errorf("rotated %q, current %q", old, cur)
	}
}
