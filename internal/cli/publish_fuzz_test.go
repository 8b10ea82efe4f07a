package cli

import (
	"strconv"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/network"
)

// FuzzParsePublish: -p values that parse give ports with a protocol (port
// 0 included: docker's parser takes it, the engine decides); every bound
// port is exposed; host ports are empty, a number or a range (the engine
// picks one) in 0-65535; and each binding written back as
// [IP:]HOSTPORT:PORT/PROTO parses to the same binding.
//
//	go test ./internal/cli -run '^$' -fuzz '^FuzzParsePublish$' -fuzztime 1m
func FuzzParsePublish(f *testing.F) {
	for _, s := range []string{"80", "8080:80", "127.0.0.1:8080:80/udp", "[::1]:53:53/udp", "1000-1002:2000-2002",
		"0.0.0.0::80/sctp", "published=8080,target=80,protocol=tcp", "target=80", "::80", "65536:1", "80-70"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		exposed, bindings, err := parsePublish([]string{spec})
		if err != nil {
			return
		}
		for p := range exposed {
			if p.Proto() == "" {
				t.Fatalf("%q: exposed port %v", spec, p)
			}
		}
		for p, bs := range bindings {
			if _, ok := exposed[p]; !ok {
				t.Fatalf("%q: %v is bound but not exposed", spec, p)
			}
			for _, b := range bs {
				if b.HostPort != "" && !hostPortOK(b.HostPort) {
					t.Fatalf("%q: host port %q", spec, b.HostPort)
				}
				again := b.HostPort + ":" + strconv.Itoa(int(p.Num())) + "/" + string(p.Proto())
				if b.HostIP.IsValid() {
					ip := b.HostIP.String()
					if b.HostIP.Is6() {
						ip = "[" + ip + "]"
					}
					again = ip + ":" + again
				}
				_, bs2, err := parsePublish([]string{again})
				want := network.PortMap{p: {b}}
				if err != nil || len(bs2) != 1 || len(bs2[p]) != 1 || bs2[p][0] != want[p][0] {
					t.Fatalf("%q: binding %v %+v written back as %q gives %v, %v", spec, p, b, again, bs2, err)
				}
			}
		}
	})
}

// hostPortOK: N or N-M (N <= M), in 0-65535.
func hostPortOK(s string) bool {
	lo, hi, isRange := strings.Cut(s, "-")
	if !isRange {
		hi = lo
	}
	a, err1 := strconv.Atoi(lo)
	b, err2 := strconv.Atoi(hi)
	return err1 == nil && err2 == nil && 0 <= a && a <= b && b <= 65535
}
