package formatter

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/volume"
)

func sampleDiskUsage(now time.Time) DiskUsage {
	created := now.Add(-2 * time.Hour)
	return DiskUsage{
		LayersSize: 10_000_000,
		Images: []image.Summary{
			{ID: "sha256:1111111111111111aaaa", RepoTags: []string{"busybox:latest"}, Created: created.Unix(), Size: 4_000_000, SharedSize: 1_000_000, Containers: 1},
			{ID: "sha256:2222222222222222bbbb", RepoTags: []string{}, Created: created.Unix(), Size: 6_000_000, SharedSize: 1_000_000, Containers: 0},
		},
		Containers: []container.Summary{
			{ID: "c1c1c1c1c1c1c1c1", Names: []string{"/web"}, Image: "busybox", Command: "sh -c 'sleep 1000'", Created: created.Unix(),
				State: container.StateRunning, Status: "Up 2 hours", SizeRw: 100, SizeRootFs: 4_000_100,
				Mounts: []container.MountPoint{{Type: "volume", Name: "data", Driver: "local"}}},
			{ID: "c2c2c2c2c2c2c2c2", Names: []string{"/old"}, Image: "busybox", Command: "true", Created: created.Unix(),
				State: container.StateExited, Status: "Exited (0) 2 hours ago", SizeRw: 300},
		},
		Volumes: []volume.Volume{
			{Name: "data", Driver: "local", UsageData: &volume.UsageData{Size: 2048, RefCount: 1}},
			{Name: "spare", Driver: "local", UsageData: &volume.UsageData{Size: 1024, RefCount: 0}},
		},
		BuildCache: []build.CacheRecord{
			{ID: "bbbbbbbbbbbbbbbbbbbb", Type: "regular", Size: 5000, Shared: false, CreatedAt: created},
			{ID: "aaaaaaaaaaaaaaaaaaaa", Type: "regular", Size: 3000, Shared: true, CreatedAt: created},
		},
	}
}

// The sums and the -v tables are docker 28's (cli/command/formatter/disk_usage.go).
func TestDiskUsage(t *testing.T) {
	now := time.Now()
	du := sampleDiskUsage(now)
	var buf bytes.Buffer
	if err := DiskUsageWrite(Context{Output: &buf, Format: NewDiskUsageFormat("")}, DiskUsageRows(du)); err != nil {
		t.Fatal(err)
	}
	want := "TYPE            TOTAL     ACTIVE    SIZE      RECLAIMABLE\n" +
		"Images          2         1         10MB      7MB (70%)\n" +
		"Containers      2         1         400B      300B (75%)\n" +
		"Local Volumes   2         1         3.072kB   1.024kB (33%)\n" +
		"Build Cache     2         0         5kB       5kB\n"
	if buf.String() != want {
		t.Errorf("got\n%s\nwant\n%s", buf.String(), want)
	}

	buf.Reset()
	if err := DiskUsageVerboseWrite(&buf, du, now); err != nil {
		t.Fatal(err)
	}
	want = "Images space usage:\n\n" +
		"REPOSITORY   TAG       IMAGE ID       CREATED       SIZE      SHARED SIZE   UNIQUE SIZE   CONTAINERS\n" +
		"busybox      latest    111111111111   2 hours ago   4MB       1MB           3MB           1\n" +
		"<none>       <none>    222222222222   2 hours ago   6MB       1MB           5MB           0\n" +
		"\nContainers space usage:\n\n" +
		"CONTAINER ID   IMAGE     COMMAND                LOCAL VOLUMES   SIZE      CREATED       STATUS                   NAMES\n" +
		"c1c1c1c1c1c1   busybox   \"sh -c 'sleep 1000'\"   1               100B      2 hours ago   Up 2 hours               web\n" +
		"c2c2c2c2c2c2   busybox   \"true\"                 0               300B      2 hours ago   Exited (0) 2 hours ago   old\n" +
		"\nLocal Volumes space usage:\n\n" +
		"VOLUME NAME   LINKS     SIZE\n" +
		"data          1         2.048kB\n" +
		"spare         0         1.024kB\n" +
		"\nBuild cache usage: 5kB\n\n" +
		"CACHE ID       CACHE TYPE   SIZE      CREATED       LAST USED   USAGE     SHARED\n" +
		"aaaaaaaaaaaa   regular      3kB       2 hours ago               0         true\n" +
		"bbbbbbbbbbbb   regular      5kB       2 hours ago               0         false\n"
	if buf.String() != want {
		t.Errorf("got\n%s\nwant\n%s", buf.String(), want)
		gl, wl := strings.Split(buf.String(), "\n"), strings.Split(want, "\n")
		for i := range min(len(gl), len(wl)) {
			if gl[i] != wl[i] {
				t.Errorf("line %d:\n%q\n%q", i, gl[i], wl[i])
			}
		}
	}

	buf.Reset()
	if err := DiskUsageVerboseTemplate(&buf, du, now, "{{range .Volumes}}{{.Name}}={{.Size}} {{end}}{{range .BuildCache}}{{.ID}} {{end}}"); err != nil {
		t.Fatal(err)
	}
	if got := buf.String(); got != "data=2.048kB spare=1.024kB aaaaaaaaaaaaaaaaaaaa bbbbbbbbbbbbbbbbbbbb " {
		t.Errorf("template: %q", got)
	}
}
