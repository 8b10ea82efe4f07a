// Command lookalike stands in for the programs of the images critest
// (sigs.k8s.io/cri-tools) pulls, so busybox-based look-alikes behave as
// its specs expect: hack/critest.sh builds it statically and puts it into
// the images that hack/critest/images pushes to a local registry. What it
// does depends on the name it runs as:
//
//	nginx [-port N]   re-executes itself so /proc/PID/cmdline reads
//	                  "nginx: master process ..." (as nginx's master does),
//	                  writes /var/run/nginx.pid and serves HTTP on N (80)
//	httpd-foreground  logs an httpd line and serves HTTP on 80
//	nnp               prints "Effective uid: N" (installed setuid root, for
//	                  the no_new_privs specs)
//	pause             sleeps, reaps children, exits on SIGTERM or SIGINT (the
//	                  pause image, which containerd runs as its sandboxes)
//	pgrep PATTERN     prints the pids whose name matches (procps' pgrep,
//	                  an applet busybox images have and Debian's
//	                  busybox-static lacks)
//	ipcs -m           lists System V shared memory segments (likewise)
//
// It is not part of skiff.
package main

import (
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
)

const master = "nginx: master process nginx -g daemon off;"

func main() {
	switch name := filepath.Base(os.Args[0]); {
	case strings.HasPrefix(os.Args[0], "nginx: master process"), name == "nginx":
		nginx()
	case name == "httpd-foreground", name == "httpd":
		serve(80, "httpd", "<html><body><h1>It works!</h1></body></html>\n")
	case name == "nnp":
		fmt.Printf("Effective uid: %d\n", syscall.Geteuid())
	case name == "pause":
		pause()
	case name == "pgrep":
		pgrep()
	case name == "ipcs":
		ipcs()
	default:
		fmt.Fprintf(os.Stderr, "lookalike: unknown name %q\n", name)
		os.Exit(2)
	}
}

func nginx() {
	if !strings.HasPrefix(os.Args[0], "nginx: master process") {
		// argv[0] is what /proc/PID/cmdline shows; the executable's file
		// name ("nginx") stays the process's comm, which pidof matches.
		exe, err := os.Executable()
		if err != nil {
			exe = "/usr/sbin/nginx"
		}
		args := append([]string{master}, os.Args[1:]...)
		err = syscall.Exec(exe, args, os.Environ())
		fmt.Fprintf(os.Stderr, "nginx: re-exec: %v\n", err)
		os.Exit(1)
	}
	fs := flag.NewFlagSet("nginx", flag.ExitOnError)
	port := fs.Int("port", 80, "port to listen on")
	fs.String("g", "", "ignored (nginx's global directives)")
	fs.Parse(os.Args[1:])
	os.MkdirAll("/var/run", 0o755)
	if err := os.WriteFile("/var/run/nginx.pid", []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		fmt.Fprintf(os.Stderr, "nginx: %v\n", err)
	}
	serve(*port, "nginx", "<!DOCTYPE html>\n<html><head><title>Welcome to nginx!</title></head><body><h1>Welcome to nginx!</h1></body></html>\n")
}

func serve(port int, name, page string) {
	fmt.Printf("%s: listening on port %d\n", name, port)
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Printf("%s %s %s\n", r.RemoteAddr, r.Method, r.URL.Path)
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, page)
	})
	if err := http.ListenAndServe(fmt.Sprintf(":%d", port), nil); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(1)
	}
}

func pause() {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD)
	for s := range sigs {
		if s != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			var ws syscall.WaitStatus
			if pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil); pid <= 0 || err != nil {
				break
			}
		}
	}
}

func pgrep() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: pgrep PATTERN")
		os.Exit(2)
	}
	re, err := regexp.Compile(os.Args[1])
	if err != nil {
		fmt.Fprintf(os.Stderr, "pgrep: %v\n", err)
		os.Exit(2)
	}
	ents, _ := os.ReadDir("/proc")
	found := false
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		comm, err := os.ReadFile("/proc/" + e.Name() + "/comm")
		if err == nil && re.MatchString(strings.TrimSpace(string(comm))) {
			fmt.Println(pid)
			found = true
		}
	}
	if !found {
		os.Exit(1)
	}
}

// ipcs prints the shared memory segments of the IPC namespace in
// util-linux's layout (the message queues and semaphores are not needed).
func ipcs() {
	fmt.Println("\n------ Shared Memory Segments --------")
	fmt.Printf("%-10s %-10s %-10s %-10s %-10s %-10s %-10s\n", "key", "shmid", "owner", "perms", "bytes", "nattch", "status")
	b, err := os.ReadFile("/proc/sysvipc/shm")
	if err != nil {
		fmt.Fprintf(os.Stderr, "ipcs: %v\n", err)
		os.Exit(1)
	}
	for i, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if i == 0 || len(f) < 8 {
			continue // the header
		}
		key, _ := strconv.ParseInt(f[0], 10, 64)
		perms, _ := strconv.ParseInt(f[2], 8, 64)
		fmt.Printf("0x%08x %-10s %-10s %-10o %-10s %-10s\n", uint32(key), f[1], f[7], perms&0o777, f[3], f[6])
	}
	fmt.Println()
}
