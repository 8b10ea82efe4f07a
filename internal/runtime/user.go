package runtime

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/skiff-dev/skiff/internal/errdefs"
)

// execUser is a resolved user: ids, supplementary groups and home.
type execUser struct {
	UID, GID uint32
	Sgids    []uint32
	Home     string
}

type passwdEntry struct {
	name     string
	uid, gid uint32
	home     string
}

type groupEntry struct {
	name    string
	gid     uint32
	members []string
}

// resolveUser resolves p's user the way Docker (moby/sys/user) does, in the
// passwd and group files given (nil readers are empty files):
//
//   - "" is uid p.UID; "name" or "uid" picks a passwd entry (a numeric uid
//     needs none), which gives the gid and home;
//   - ":group" (name or gid) replaces the gid; without it a matched user
//     also gets the groups that list it in /etc/group;
//   - the supplementary groups are the gid, then those, then the spec's
//     additional gids (Docker puts the gid first).
func resolveUser(p *procConfig, passwd, group io.Reader) (*execUser, error) {
	u := &execUser{UID: p.UID, GID: p.GID, Home: "/"}
	userArg, groupArg, _ := strings.Cut(p.User, ":")
	users, err := parsePasswd(passwd)
	if err != nil {
		return nil, err
	}
	uidArg, uidErr := parseID(userArg)
	var matched string
	for _, e := range users {
		var ok bool
		switch {
		case userArg == "":
			ok = e.uid == u.UID
		case uidErr == nil:
			ok = e.uid == uidArg
		default:
			ok = e.name == userArg
		}
		if ok {
			matched, u.UID, u.GID, u.Home = e.name, e.uid, e.gid, e.home
			break
		}
	}
	if matched == "" && userArg != "" {
		if uidErr != nil {
			return nil, errdefs.Invalid("unable to find user %s: no matching entries in passwd file", userArg)
		}
		u.UID = uidArg
	}
	var groups []groupEntry
	if groupArg != "" || matched != "" || len(p.Groups) > 0 {
		if groups, err = parseGroup(group); err != nil {
			return nil, err
		}
	}
	if groupArg != "" || matched != "" {
		gidArg, gidErr := parseID(groupArg)
		if groupArg != "" {
			found := false
			for _, g := range groups {
				if (gidErr == nil && g.gid == gidArg) || (gidErr != nil && g.name == groupArg) {
					u.GID, found = g.gid, true
					break
				}
			}
			if !found {
				if gidErr != nil {
					return nil, errdefs.Invalid("unable to find group %s: no matching entries in group file", groupArg)
				}
				u.GID = gidArg
			}
		} else {
			for _, g := range groups {
				for _, m := range g.members {
					if m == matched {
						u.Sgids = append(u.Sgids, g.gid)
						break
					}
				}
			}
		}
	}
	// As dockerd: the primary group leads the supplementary ones, so
	// `id` shows groups=65534(nogroup) for nobody.
	added, err := additionalGroups(p.Groups, groups)
	if err != nil {
		return nil, err
	}
	u.Sgids = append(append(append([]uint32{u.GID}, u.Sgids...), p.AdditionalGids...), added...)
	return u, nil
}

// additionalGroups resolves --group-add's entries as moby/sys/user does: a
// group of that name or gid in /etc/group, else a number taken as a gid;
// anything else fails the start ("Unable to find group staffx").
func additionalGroups(want []string, groups []groupEntry) ([]uint32, error) {
	var out []uint32
	seen := map[uint32]bool{}
	for _, w := range want {
		gid, found := uint32(0), false
		for _, g := range groups {
			if g.name == w || strconv.FormatUint(uint64(g.gid), 10) == w {
				gid, found = g.gid, true
				break
			}
		}
		if !found {
			n, err := strconv.ParseUint(w, 10, 32)
			if err != nil {
				return nil, errdefs.Invalid("Unable to find group %s: no matching entries in group file", w)
			}
			if n > 1<<31-1 {
				return nil, errdefs.Invalid("uids and gids must be in range 0-2147483647")
			}
			gid = uint32(n)
		}
		if !seen[gid] {
			seen[gid] = true
			out = append(out, gid)
		}
	}
	return out, nil
}

// resolveUserInRoot reads /etc/passwd and /etc/group of the current root
// (the container's, after pivot_root or setns).
func resolveUserInRoot(p *procConfig) (*execUser, error) {
	open := func(name string) (*os.File, error) {
		f, err := os.Open(name)
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return f, err
	}
	passwd, err := open("/etc/passwd")
	if err != nil {
		return nil, fmt.Errorf("read /etc/passwd: %w", err)
	}
	group, err := open("/etc/group")
	if err != nil {
		return nil, fmt.Errorf("read /etc/group: %w", err)
	}
	var pr, gr io.Reader
	if passwd != nil {
		defer passwd.Close()
		pr = passwd
	}
	if group != nil {
		defer group.Close()
		gr = group
	}
	return resolveUser(p, pr, gr)
}

func parseID(s string) (uint32, error) {
	v, err := strconv.ParseUint(s, 10, 32)
	return uint32(v), err
}

// parsePasswd reads name:password:uid:gid:gecos:home:shell lines; malformed
// lines are skipped like libc does.
func parsePasswd(r io.Reader) ([]passwdEntry, error) {
	var out []passwdEntry
	err := eachLine(r, func(f []string) {
		if len(f) < 4 {
			return
		}
		uid, err1 := parseID(f[2])
		gid, err2 := parseID(f[3])
		if err1 != nil || err2 != nil {
			return
		}
		e := passwdEntry{name: f[0], uid: uid, gid: gid}
		if len(f) > 5 {
			e.home = f[5]
		}
		out = append(out, e)
	})
	return out, err
}

// parseGroup reads name:password:gid:member,member lines.
func parseGroup(r io.Reader) ([]groupEntry, error) {
	var out []groupEntry
	err := eachLine(r, func(f []string) {
		if len(f) < 3 {
			return
		}
		gid, err := parseID(f[2])
		if err != nil {
			return
		}
		g := groupEntry{name: f[0], gid: gid}
		if len(f) > 3 && f[3] != "" {
			g.members = strings.Split(f[3], ",")
		}
		out = append(out, g)
	})
	return out, err
}

func eachLine(r io.Reader, fn func([]string)) error {
	if r == nil {
		return nil
	}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		fn(strings.Split(line, ":"))
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read user database: %w", err)
	}
	return nil
}

// withHome adds HOME to env when it has none.
func withHome(env []string, home string) []string {
	for _, e := range env {
		if strings.HasPrefix(e, "HOME=") {
			return env
		}
	}
	if home == "" {
		home = "/"
	}
	return append(env[:len(env):len(env)], "HOME="+home)
}
