package cgroups

import (
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestDynmodsRemount(t *testing.T) {
	const (
		tmpfs   = "25 30 0:23 / /sys/fs/cgroup ro,nosuid,nodev,noexec - tmpfs tmpfs ro,mode=755\n"
		unified = "26 25 0:24 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:5 - cgroup2 cgroup2 rw,nsdelegate\n"
		memory  = "27 25 0:25 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
		systemd = "28 25 0:26 / /sys/fs/cgroup/systemd rw,nosuid - cgroup cgroup rw,xattr,name=systemd\n"
		cpu     = "29 25 0:27 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev - cgroup cgroup rw,cpu,cpuacct\n"
	)
	tests := []struct {
		name, mountinfo string
		want            remount
	}{
		{
			name:      "hybrid: the cgroup2 mount, keeping nsdelegate and its mount flags",
			mountinfo: tmpfs + memory + unified + systemd,
			want: remount{target: "/sys/fs/cgroup/unified",
				flags: unix.MS_REMOUNT | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC | unix.MS_RELATIME,
				data:  "nsdelegate,favordynmods"},
		},
		{
			name:      "v1 only: the first controller hierarchy, with its controllers",
			mountinfo: tmpfs + systemd + cpu + memory,
			want:      remount{target: "/sys/fs/cgroup/cpu,cpuacct", flags: unix.MS_REMOUNT | unix.MS_NOSUID | unix.MS_NODEV, data: "cpu,cpuacct,favordynmods"},
		},
		{
			name:      "already on somewhere: nothing to do",
			mountinfo: tmpfs + memory + strings.Replace(unified, "rw,nsdelegate", "rw,nsdelegate,favordynmods", 1),
		},
		{
			name:      "no cgroup mount at all",
			mountinfo: tmpfs,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := dynmodsRemount(strings.NewReader(tt.mountinfo))
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}
