package logger_test

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/skiff-dev/skiff/internal/logger"
	"github.com/skiff-dev/skiff/internal/logger/jsonfile"
)

func entry(i int) logger.Entry {
	return logger.Entry{Stream: "stdout", Line: []byte(fmt.Sprintf("line %03d\n", i)), Time: time.Unix(1700000000+int64(i), 0).UTC()}
}

// Rotated files are gzipped with Docker's header (lastTime = the newest
// record of the file), shifted as .1.gz .2.gz, and read back in order;
// since skips old compressed files by their header.
func TestCompressedRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c-json.log")
	w, err := jsonfile.Open(path, jsonfile.Options{MaxSize: 400, MaxFiles: 3, Compress: true})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		if err := w.WriteEntries([]logger.Entry{entry(i)}); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	var got []string
	jsonfile.Read(context.Background(), path, logger.ReadOptions{Tail: -1}, func(e logger.Entry) error {
		got = append(got, string(e.Line))
		return nil
	})
	if len(got) < 10 || got[len(got)-1] != "line 019\n" {
		t.Fatalf("read back %q", got)
	}
	for i := 1; i < len(got); i++ {
		if got[i] <= got[i-1] {
			t.Fatalf("out of order: %q", got)
		}
	}
	f, err := os.Open(path + ".1.gz")
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var x struct{ LastTime time.Time }
	if err := json.Unmarshal(zr.Header.Extra, &x); err != nil {
		t.Fatalf("header extra %q: %v", zr.Header.Extra, err)
	}
	f.Close()
	// The newest record of .1.gz is just before the first of the live file.
	var firstLive time.Time
	jsonfile.Read(context.Background(), path, logger.ReadOptions{Tail: -1, Since: time.Unix(1700000000+19, 0)}, func(e logger.Entry) error {
		if firstLive.IsZero() {
			firstLive = e.Time
		}
		return nil
	})
	if !x.LastTime.Before(firstLive) || x.LastTime.IsZero() {
		t.Errorf("lastTime %v, first live record %v", x.LastTime, firstLive)
	}
	for _, n := range []string{".1", ".2", ".3.gz"} {
		if _, err := os.Stat(path + n); err == nil {
			t.Errorf("%s exists", n)
		}
	}
}

// A follower that finds the log rotated several times since it last looked
// reads the files in between (here compressed) instead of skipping them.
func TestFollowCatchesUpOnRotations(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c-json.log")
	w, err := jsonfile.Open(path, jsonfile.Options{MaxSize: 400, MaxFiles: 20, Compress: true})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.WriteEntries([]logger.Entry{entry(0)})
	got := make(chan string, 1000)
	stopped := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	first := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- jsonfile.Read(ctx, path, logger.ReadOptions{Tail: -1, Follow: true, Stopped: stopped}, func(e logger.Entry) error {
			if string(e.Line) == "line 000\n" {
				close(first)
				// Hold the follower while the writer rotates many times.
				time.Sleep(300 * time.Millisecond)
			}
			got <- string(e.Line)
			return nil
		})
	}()
	<-first
	for i := 1; i < 60; i++ { // about 12 rotations
		w.WriteEntries([]logger.Entry{entry(i)})
	}
	time.Sleep(200 * time.Millisecond)
	close(stopped)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	close(got)
	i := 0
	for l := range got {
		if want := fmt.Sprintf("line %03d\n", i); l != want {
			t.Fatalf("record %d: %q, want %q", i, l, want)
		}
		i++
	}
	if i != 60 {
		t.Errorf("followed %d records, want 60", i)
	}
}
