package runtime

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/skiff-dev/skiff/internal/errdefs"
)

const testPasswd = `root:x:0:0:root:/root:/bin/sh
# a comment
daemon:x:1:1:daemon:/usr/sbin:/bin/false
broken line
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
app:x:1000:1000::/home/app:/bin/sh
`

const testGroup = `root:x:0:
wheel:x:10:root
audio:x:29:daemon,nobody,app
staff:x:50:app
nogroup:x:65534:
`

func TestResolveUser(t *testing.T) {
	tests := []struct {
		name    string
		p       procConfig
		want    execUser
		wantErr string
	}{
		{name: "default root", p: procConfig{}, want: execUser{UID: 0, GID: 0, Sgids: []uint32{0, 10}, Home: "/root"}},
		{name: "name", p: procConfig{User: "app"}, want: execUser{UID: 1000, GID: 1000, Sgids: []uint32{1000, 29, 50}, Home: "/home/app"}},
		{name: "uid with entry", p: procConfig{User: "65534"}, want: execUser{UID: 65534, GID: 65534, Sgids: []uint32{65534, 29}, Home: "/nonexistent"}},
		{name: "uid without entry", p: procConfig{User: "4242"}, want: execUser{UID: 4242, GID: 0, Sgids: []uint32{0}, Home: "/"}},
		{name: "name and group name", p: procConfig{User: "app:staff"}, want: execUser{UID: 1000, GID: 50, Sgids: []uint32{50}, Home: "/home/app"}},
		{name: "name and gid", p: procConfig{User: "app:777"}, want: execUser{UID: 1000, GID: 777, Sgids: []uint32{777}, Home: "/home/app"}},
		{name: "uid and gid", p: procConfig{User: "5:6"}, want: execUser{UID: 5, GID: 6, Sgids: []uint32{6}, Home: "/"}},
		{name: "spec ids", p: procConfig{UID: 1, GID: 1}, want: execUser{UID: 1, GID: 1, Sgids: []uint32{1, 29}, Home: "/usr/sbin"}},
		{name: "additional gids", p: procConfig{User: "nobody", AdditionalGids: []uint32{100}}, want: execUser{UID: 65534, GID: 65534, Sgids: []uint32{65534, 29, 100}, Home: "/nonexistent"}},
		{name: "unknown user", p: procConfig{User: "xyz"}, wantErr: "unable to find user xyz: no matching entries in passwd file"},
		{name: "unknown group", p: procConfig{User: "app:nope"}, wantErr: "unable to find group nope: no matching entries in group file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := resolveUser(&tt.p, strings.NewReader(testPasswd), strings.NewReader(testGroup))
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr || !errdefs.IsInvalid(err) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*got, tt.want) {
				t.Fatalf("got %+v, want %+v", *got, tt.want)
			}
		})
	}
}

func TestResolveUserWithoutFiles(t *testing.T) {
	u, err := resolveUser(&procConfig{User: "7"}, nil, nil)
	if err != nil || u.UID != 7 || u.Home != "/" {
		t.Fatalf("%+v %v", u, err)
	}
	if _, err := resolveUser(&procConfig{User: "someone"}, nil, nil); err == nil {
		t.Fatal("name resolved without a passwd file")
	}
}

func TestWithHome(t *testing.T) {
	env := []string{"PATH=/bin"}
	if got := withHome(env, "/home/x"); !reflect.DeepEqual(got, []string{"PATH=/bin", "HOME=/home/x"}) {
		t.Fatalf("got %v", got)
	}
	if len(env) != 1 {
		t.Fatal("withHome changed its input")
	}
	if got := withHome([]string{"HOME=/mine"}, "/home/x"); !reflect.DeepEqual(got, []string{"HOME=/mine"}) {
		t.Fatalf("got %v", got)
	}
}

func TestParseMountOpts(t *testing.T) {
	tests := []struct {
		opts  []string
		flags uintptr
		prop  uintptr
		data  string
	}{
		{[]string{"nosuid", "noexec", "nodev"}, unix.MS_NOSUID | unix.MS_NOEXEC | unix.MS_NODEV, 0, ""},
		{[]string{"rbind", "ro", "rprivate"}, unix.MS_BIND | unix.MS_REC | unix.MS_RDONLY, unix.MS_PRIVATE | unix.MS_REC, ""},
		{[]string{"ro", "rw"}, 0, 0, ""},
		{[]string{"nosuid", "mode=755", "size=65536k"}, unix.MS_NOSUID, 0, "mode=755,size=65536k"},
		{[]string{"newinstance", "ptmxmode=0666"}, 0, 0, "newinstance,ptmxmode=0666"},
		{[]string{"rro"}, unix.MS_RDONLY, 0, ""},
	}
	for _, tt := range tests {
		o, err := parseMountOpts(tt.opts)
		if err != nil {
			t.Fatal(err)
		}
		if o.flags != tt.flags || o.propagation != tt.prop || joinData(o.data) != tt.data {
			t.Errorf("%v: flags %#x prop %#x data %q", tt.opts, o.flags, o.propagation, joinData(o.data))
		}
	}
	if _, err := parseMountOpts([]string{"idmap"}); errdefs.KindOf(err) != errdefs.KindNotImplemented {
		t.Errorf("idmap: %v", err)
	}
}

func TestSyncMessages(t *testing.T) {
	var buf bytes.Buffer
	writeMsg(&buf, msgConfig, []byte(`{"a":1}`))
	writeMsg(&buf, msgError, encodeError(errdefs.CommandNotFound("exec: %q: not found", "x")))
	typ, p, err := readMsg(&buf)
	if err != nil || typ != msgConfig || string(p) != `{"a":1}` {
		t.Fatalf("%q %q %v", typ, p, err)
	}
	typ, p, err = readMsg(&buf)
	if err != nil || typ != msgError {
		t.Fatalf("%q %v", typ, err)
	}
	e := decodeError(p)
	if errdefs.KindOf(e) != errdefs.KindCommandNotFound || e.Error() != `exec: "x": not found` {
		t.Fatalf("decoded %v (%v)", e, errdefs.KindOf(e))
	}
	if _, _, err := readMsg(&buf); err == nil {
		t.Fatal("read past the end")
	}
	// Kinds travel by name, never by errdefs.Kind's numbering.
	for _, c := range []struct {
		err  error
		wire string
		kind errdefs.Kind
	}{
		{errdefs.CommandNotFound("not found"), "commandnotfound not found", errdefs.KindCommandNotFound},
		{errdefs.CannotInvoke("exec: %q: permission denied", "/x"), `cannotinvoke exec: "/x": permission denied`, errdefs.KindCannotInvoke},
		{errdefs.Invalid("bad sysctl"), "invalid bad sysctl", errdefs.KindInvalid},
		{fmt.Errorf("mount proc: %w", unix.EPERM), "system mount proc: operation not permitted", errdefs.KindSystem},
	} {
		p := encodeError(c.err)
		if string(p) != c.wire {
			t.Errorf("encodeError(%v) = %q, want %q", c.err, p, c.wire)
		}
		if d := decodeError(p); errdefs.KindOf(d) != c.kind || d.Error() != c.err.Error() {
			t.Errorf("decodeError(%q) = %v (kind %v)", p, d, errdefs.KindOf(d))
		}
	}
	if d := decodeError(nil); errdefs.KindOf(d) != errdefs.KindSystem {
		t.Errorf("empty error message: %v", d)
	}
	if _, _, err := readMsg(bytes.NewReader([]byte{'C', 0xff, 0xff, 0xff, 0xff})); err == nil {
		t.Fatal("huge message accepted")
	}
}

func TestPlanNamespaces(t *testing.T) {
	l := testSpec(t, "/", "true").Linux
	p, err := planNamespaces(l)
	if err != nil {
		t.Fatal(err)
	}
	want := uintptr(unix.CLONE_NEWPID | unix.CLONE_NEWIPC | unix.CLONE_NEWUTS | unix.CLONE_NEWNS | unix.CLONE_NEWNET)
	if p.cloneFlags != want || !p.newCgroup || !p.newUTS || len(p.joins) != 0 {
		t.Fatalf("plan %+v", p)
	}
	l.Namespaces[5].Path = "/proc/1/ns/net"
	if p, _ = planNamespaces(l); p.cloneFlags&unix.CLONE_NEWNET != 0 || len(p.joins) != 1 {
		t.Fatalf("join plan %+v", p)
	}
	l.Namespaces = l.Namespaces[:3] // no mount namespace
	if _, err := planNamespaces(l); !errdefs.IsInvalid(err) {
		t.Fatalf("no mount namespace: %v", err)
	}
}
