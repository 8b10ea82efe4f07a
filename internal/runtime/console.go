package runtime

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// A container with Process.Terminal gets a pseudo-terminal from its own
// devpts instance, as runc makes it: programs see /dev/pts/0 and
// /dev/console, not a path from the host's devpts. Init opens it after
// pivot_root, makes the slave its stdio and controlling terminal, and hands
// the master to the parent over the sync socket (SCM_RIGHTS).

// setupConsole runs in init after pivot_root and returns the master.
func setupConsole(uid uint32) (int, error) {
	master, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open /dev/ptmx (is devpts mounted on /dev/pts?): %w", err)
	}
	if err := unix.IoctlSetPointerInt(master, unix.TIOCSPTLCK, 0); err != nil {
		unix.Close(master)
		return -1, fmt.Errorf("unlock pty: %w", err)
	}
	// TIOCGPTPEER opens the slave through the master: no path lookup.
	s, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(master), unix.TIOCGPTPEER, unix.O_RDWR|unix.O_NOCTTY)
	if errno != 0 {
		unix.Close(master)
		return -1, fmt.Errorf("open pty slave: %w", errno)
	}
	slave := int(s)
	defer unix.Close(slave)
	if err := unix.Fchown(slave, int(uid), -1); err != nil {
		unix.Close(master)
		return -1, fmt.Errorf("chown pty: %w", err)
	}
	for fd := 0; fd <= 2; fd++ {
		if err := unix.Dup3(slave, fd, 0); err != nil {
			unix.Close(master)
			return -1, fmt.Errorf("dup pty to fd %d: %w", fd, err)
		}
	}
	if err := unix.IoctlSetInt(0, unix.TIOCSCTTY, 0); err != nil {
		unix.Close(master)
		return -1, fmt.Errorf("set controlling terminal: %w", err)
	}
	if f, err := os.OpenFile("/dev/console", os.O_CREATE|os.O_RDONLY, 0o600); err == nil {
		f.Close()
	}
	if err := unix.Mount(fdPath(0), "/dev/console", "", unix.MS_BIND, ""); err != nil {
		unix.Close(master)
		return -1, fmt.Errorf("bind /dev/console: %w", err)
	}
	return master, nil
}

// sendFd passes fd to the peer of sock with one byte of data.
func sendFd(sock *os.File, fd int) error {
	return unix.Sendmsg(int(sock.Fd()), []byte{'T'}, unix.UnixRights(fd), nil, 0)
}

// recvFd receives a descriptor sent by sendFd.
func recvFd(sock *os.File) (*os.File, error) {
	buf := make([]byte, 1)
	oob := make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := unix.Recvmsg(int(sock.Fd()), buf, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		return nil, err
	}
	if n != 1 || oobn == 0 {
		return nil, fmt.Errorf("no descriptor received")
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return nil, fmt.Errorf("bad control message: %v", err)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		return nil, fmt.Errorf("bad descriptor message: %v", err)
	}
	return os.NewFile(uintptr(fds[0]), "console"), nil
}
