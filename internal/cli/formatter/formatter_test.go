package formatter

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/image"
)

var now = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

func clock() time.Time { return now }

var testContainers = []container.Summary{
	{
		ID:      "4f8e2b1c9d0a7e6f5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a",
		Names:   []string{"/web"},
		Image:   "nginx:latest",
		ImageID: "sha256:aaaa",
		Command: "/docker-entrypoint.sh nginx -g 'daemon off;'",
		Created: now.Add(-2 * time.Minute).Unix(),
		Ports: []container.PortSummary{
			{IP: netip.MustParseAddr("0.0.0.0"), PrivatePort: 80, PublicPort: 8080, Type: "tcp"},
			{PrivatePort: 443, Type: "tcp"},
		},
		Labels: map[string]string{"b": "2", "a": "1"},
		State:  container.StateRunning,
		Status: "Up 2 minutes",
		SizeRw: 1234, SizeRootFs: 4_260_000,
	},
	{
		ID:      "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		Names:   []string{"/quirky_hopper"},
		Image:   "busybox",
		Command: "true",
		Created: now.Add(-3 * time.Hour).Unix(),
		State:   container.StateExited,
		Status:  "Exited (0) 5 seconds ago",
	},
}

func TestContainerTable(t *testing.T) {
	var buf bytes.Buffer
	err := ContainerWrite(Context{Output: &buf, Format: NewContainerFormat("", false, false), Trunc: true, Now: clock}, testContainers)
	if err != nil {
		t.Fatal(err)
	}
	want := "" +
		"CONTAINER ID   IMAGE          COMMAND                  CREATED         STATUS                     PORTS                           NAMES\n" +
		"4f8e2b1c9d0a   nginx:latest   \"/docker-entrypoint.…\"   2 minutes ago   Up 2 minutes               443/tcp, 0.0.0.0:8080->80/tcp   web\n" +
		"0123456789ab   busybox        \"true\"                   3 hours ago     Exited (0) 5 seconds ago                                   quirky_hopper\n"
	if buf.String() != want {
		t.Errorf("got\n%s\nwant\n%s", buf.String(), want)
	}
}

func TestContainerFormats(t *testing.T) {
	for _, tc := range []struct {
		name    string
		format  string
		quiet   bool
		size    bool
		noTrunc bool
		want    string
	}{
		{"quiet", "", true, false, false, "4f8e2b1c9d0a\n0123456789ab\n"},
		{"quiet no-trunc", "", true, false, true, testContainers[0].ID + "\n" + testContainers[1].ID + "\n"},
		{"custom", "{{.Names}} {{.State}} {{.Label \"a\"}}", false, false, false, "web running 1\nquirky_hopper exited \n"},
		{"labels", "{{.Labels}}", false, false, false, "a=1,b=2\n\n"},
		{"table custom", "table {{.ID}}\\t{{.Names}}", false, false, false, "CONTAINER ID   NAMES\n4f8e2b1c9d0a   web\n0123456789ab   quirky_hopper\n"},
		{"helpers", "{{upper .Names}} {{lower .State}} {{truncate .ID 4}} {{join (split .Names \"_\") \"-\"}}", false, false, false, "WEB running 4f8e web\nQUIRKY_HOPPER exited 0123 quirky-hopper\n"},
		{"table helpers header", "table {{upper .Names}}", false, false, false, "NAMES\nWEB\nQUIRKY_HOPPER\n"},
		{"size", "table {{.Names}}\\t{{.Size}}", false, false, false, "NAMES           SIZE\nweb             1.23kB (virtual 4.26MB)\nquirky_hopper   0B\n"},
		{"created at", "{{.CreatedAt}}", false, false, false, time.Unix(testContainers[0].Created, 0).String() + "\n" + time.Unix(testContainers[1].Created, 0).String() + "\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			err := ContainerWrite(Context{Output: &buf, Format: NewContainerFormat(tc.format, tc.quiet, tc.size), Trunc: !tc.noTrunc, Now: clock}, testContainers)
			if err != nil {
				t.Fatal(err)
			}
			if buf.String() != tc.want {
				t.Errorf("got\n%q\nwant\n%q", buf.String(), tc.want)
			}
		})
	}
}

func TestContainerJSON(t *testing.T) {
	var buf bytes.Buffer
	if err := ContainerWrite(Context{Output: &buf, Format: "{{json .}}", Trunc: true, Now: clock}, testContainers[:1]); err != nil {
		t.Fatal(err)
	}
	var got map[string]string
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("%v: %s", err, buf.String())
	}
	for k, v := range map[string]string{"ID": "4f8e2b1c9d0a", "Names": "web", "Image": "nginx:latest", "RunningFor": "2 minutes ago", "Status": "Up 2 minutes", "State": "running", "Labels": "a=1,b=2"} {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
}

func TestBadTemplate(t *testing.T) {
	var buf bytes.Buffer
	err := ContainerWrite(Context{Output: &buf, Format: "{{.Nope", Now: clock}, testContainers)
	if err == nil || !strings.HasPrefix(err.Error(), "template parsing error:") {
		t.Errorf("error %v", err)
	}
	err = ContainerWrite(Context{Output: &buf, Format: "{{.NoSuchField}}", Now: clock}, testContainers)
	if err == nil || !strings.Contains(err.Error(), "can't evaluate field NoSuchField") {
		t.Errorf("error %v", err)
	}
}

var testImages = []image.Summary{
	{ID: "sha256:1111111111112222222222223333333333334444444444445555555555556666", RepoTags: []string{"busybox:latest", "busybox:1.36", "example.com/team/tool:v1"}, Created: now.Add(-48 * time.Hour).Unix(), Size: 4_261_550},
	{ID: "sha256:abcdefabcdefabcdefabcdefabcdefabcdefabcdefabcdefabcdefabcdefabcd", RepoTags: nil, Created: now.Add(-10 * time.Second).Unix(), Size: 999},
}

func TestImageTable(t *testing.T) {
	var buf bytes.Buffer
	err := ImageWrite(ImageContext{Context: Context{Output: &buf, Format: NewImageFormat("", false, false), Trunc: true, Now: clock}}, testImages)
	if err != nil {
		t.Fatal(err)
	}
	want := "" +
		"REPOSITORY              TAG       IMAGE ID       CREATED          SIZE\n" +
		"busybox                 latest    111111111111   2 days ago       4.26MB\n" +
		"busybox                 1.36      111111111111   2 days ago       4.26MB\n" +
		"example.com/team/tool   v1        111111111111   2 days ago       4.26MB\n" +
		"<none>                  <none>    abcdefabcdef   10 seconds ago   999B\n"
	if buf.String() != want {
		t.Errorf("got\n%s\nwant\n%s", buf.String(), want)
	}
}

func TestImageFormats(t *testing.T) {
	for _, tc := range []struct {
		name    string
		format  string
		quiet   bool
		digests bool
		noTrunc bool
		want    string
	}{
		{"quiet", "", true, false, false, "111111111111\n111111111111\n111111111111\nabcdefabcdef\n"},
		{"custom", "{{.Repository}}:{{.Tag}} {{.Size}}", false, false, false, "busybox:latest 4.26MB\nbusybox:1.36 4.26MB\nexample.com/team/tool:v1 4.26MB\n<none>:<none> 999B\n"},
		{"no-trunc id", "{{.ID}}", false, false, true, testImages[0].ID + "\n" + testImages[0].ID + "\n" + testImages[0].ID + "\n" + testImages[1].ID + "\n"},
		{"digests", "table {{.Repository}}\\t{{.Tag}}", false, true, false, "REPOSITORY              TAG       DIGEST\nbusybox                 latest    <none>\nbusybox                 1.36      <none>\nexample.com/team/tool   v1        <none>\n<none>                  <none>    <none>\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			err := ImageWrite(ImageContext{Context: Context{Output: &buf, Format: NewImageFormat(tc.format, tc.quiet, tc.digests), Trunc: !tc.noTrunc, Now: clock}, Digest: tc.digests}, testImages)
			if err != nil {
				t.Fatal(err)
			}
			if buf.String() != tc.want {
				t.Errorf("got\n%q\nwant\n%q", buf.String(), tc.want)
			}
		})
	}
}

func TestEllipsisAndTruncateID(t *testing.T) {
	for _, tc := range []struct {
		in   string
		max  int
		want string
	}{
		{"short", 20, "short"},
		{"exactly twenty chars", 20, "exactly twenty chars"},
		{"this is longer than twenty", 20, "this is longer than…"},
		{"héllo wörld", 5, "héll…"},
		{"x", 0, ""},
		// Wide characters take two columns, as in docker's formatter.
		{"echo 日本語のテキスト", 10, "echo 日本…"},
		{"echo 日本", 9, "echo 日本"},
		{"sh -c 'sleep 1000000'", 20, "sh -c 'sleep 100000…"},
	} {
		if got := Ellipsis(tc.in, tc.max); got != tc.want {
			t.Errorf("Ellipsis(%q, %d) = %q, want %q", tc.in, tc.max, got, tc.want)
		}
	}
	if got := TruncateID("sha256:0123456789abcdef"); got != "0123456789ab" {
		t.Errorf("TruncateID = %q", got)
	}
}

func TestInspect(t *testing.T) {
	objs := map[string]string{
		"a": `{"Id":"a","State":{"ExitCode":3,"Running":false},"Config":{"Image":"busybox","Env":["A=1"]}}`,
		"b": `{"Id":"b","State":{"ExitCode":0,"Running":true},"Config":{"Image":"nginx","Env":null}}`,
	}
	type state struct{ ExitCode int }
	type obj struct {
		ID     string `json:"Id"`
		State  *state
		Config map[string]any
	}
	get := func(ref string) (any, []byte, error) {
		raw, ok := objs[ref]
		if !ok {
			return nil, nil, &notFound{ref}
		}
		var o obj
		json.Unmarshal([]byte(raw), &o)
		return &o, []byte(raw), nil
	}
	for _, tc := range []struct {
		name   string
		refs   []string
		format string
		want   string
		code   int
	}{
		{"template", []string{"a", "b"}, "{{.State.ExitCode}}", "3\n0\n", 0},
		{"json field", []string{"a"}, "{{json .Config}}", `{"Env":["A=1"],"Image":"busybox"}` + "\n", 0},
		{"raw fallback", []string{"b"}, "{{.State.Running}}", "true\n", 0},
		{"json", []string{"a"}, "json", `[` + objs["a"] + `]` + "\n", 0},
		{"indented", []string{"b"}, "", "[\n    {\n        \"Id\": \"b\",\n        \"State\": {\n            \"ExitCode\": 0,\n            \"Running\": true\n        },\n        \"Config\": {\n            \"Image\": \"nginx\",\n            \"Env\": null\n        }\n    }\n]\n", 0},
		{"missing", []string{"a", "zz"}, "{{.ID}}", "a\n", 1},
		{"none found", []string{"zz"}, "", "[]\n", 1},
		{"bad template", []string{"a"}, "{{.ID", "", 64},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			err := Inspect(&buf, tc.refs, tc.format, get)
			code := 0
			if err != nil {
				ie, ok := err.(*InspectError)
				if !ok {
					t.Fatalf("error %T %v", err, err)
				}
				code = ie.Code
			}
			if code != tc.code {
				t.Errorf("code %d, want %d (%v)", code, tc.code, err)
			}
			if buf.String() != tc.want {
				t.Errorf("got\n%q\nwant\n%q", buf.String(), tc.want)
			}
		})
	}
}

type notFound struct{ ref string }

func (e *notFound) Error() string { return "Error: No such object: " + e.ref }
