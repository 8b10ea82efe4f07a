// Package dns is the embedded DNS server of user-defined networks: it
// listens on 127.0.0.11:53 inside a container's network namespace (the
// sockets are opened there, served by the engine), answers container
// names and aliases, and forwards everything else to upstream servers.
package dns

import (
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync"
	"time"

	mdns "github.com/miekg/dns"
	"github.com/vishvananda/netns"
)

// Address is where the server answers inside the container.
const Address = "127.0.0.11"

// LookupFunc returns the IPv4 addresses of name (no trailing dot, lower
// case) as the querying container sees them; none means "not ours".
type LookupFunc func(name string) []net.IP

// Server serves one container.
type Server struct {
	udp, tcp *mdns.Server
	once     sync.Once
}

// Serve opens 127.0.0.11:53 (UDP and TCP) in the namespace at nsPath and
// serves it until Close.
func Serve(nsPath string, lookup LookupFunc, upstream []string) (*Server, error) {
	pc, l, err := listenIn(nsPath)
	if err != nil {
		return nil, err
	}
	h := &handler{lookup: lookup, upstream: upstream}
	s := &Server{
		udp: &mdns.Server{PacketConn: pc, Handler: h},
		tcp: &mdns.Server{Listener: l, Handler: h},
	}
	go s.udp.ActivateAndServe()
	go s.tcp.ActivateAndServe()
	return s, nil
}

// Close stops serving and closes the sockets.
func (s *Server) Close() {
	s.once.Do(func() {
		s.udp.Shutdown()
		s.tcp.Shutdown()
	})
}

// listenIn opens the sockets on a thread switched into the namespace; the
// thread is dropped afterwards (left locked) so nothing else runs there.
func listenIn(nsPath string) (net.PacketConn, net.Listener, error) {
	type res struct {
		pc  net.PacketConn
		l   net.Listener
		err error
	}
	ch := make(chan res, 1)
	go func() {
		runtime.LockOSThread()
		ns, err := netns.GetFromPath(nsPath)
		if err != nil {
			ch <- res{err: fmt.Errorf("open netns %s: %w", nsPath, err)}
			return
		}
		defer ns.Close()
		if err := netns.Set(ns); err != nil {
			ch <- res{err: fmt.Errorf("enter netns %s: %w", nsPath, err)}
			return
		}
		pc, err := net.ListenPacket("udp4", Address+":53")
		if err != nil {
			ch <- res{err: fmt.Errorf("listen on %s:53/udp: %w", Address, err)}
			return
		}
		l, err := net.Listen("tcp4", Address+":53")
		if err != nil {
			pc.Close()
			ch <- res{err: fmt.Errorf("listen on %s:53/tcp: %w", Address, err)}
			return
		}
		ch <- res{pc: pc, l: l}
	}()
	r := <-ch
	return r.pc, r.l, r.err
}

type handler struct {
	lookup   LookupFunc
	upstream []string
}

func (h *handler) ServeDNS(w mdns.ResponseWriter, req *mdns.Msg) {
	if len(req.Question) != 1 {
		mdns.HandleFailed(w, req)
		return
	}
	q := req.Question[0]
	name := strings.ToLower(strings.TrimSuffix(q.Name, "."))
	if q.Qclass == mdns.ClassINET && (q.Qtype == mdns.TypeA || q.Qtype == mdns.TypeAAAA) {
		if ips := h.lookup(name); len(ips) > 0 {
			m := new(mdns.Msg)
			m.SetReply(req)
			m.Authoritative = true
			if q.Qtype == mdns.TypeA {
				for _, ip := range ips {
					m.Answer = append(m.Answer, &mdns.A{Hdr: mdns.RR_Header{Name: q.Name, Rrtype: mdns.TypeA, Class: mdns.ClassINET, Ttl: 600}, A: ip.To4()})
				}
			}
			w.WriteMsg(m)
			return
		}
	}
	h.forward(w, req)
}

func (h *handler) forward(w mdns.ResponseWriter, req *mdns.Msg) {
	proto := "udp"
	if _, ok := w.RemoteAddr().(*net.TCPAddr); ok {
		proto = "tcp"
	}
	c := &mdns.Client{Net: proto, Timeout: 4 * time.Second}
	for _, up := range h.upstream {
		resp, _, err := c.Exchange(req, net.JoinHostPort(up, "53"))
		if err == nil && resp != nil {
			w.WriteMsg(resp)
			return
		}
	}
	m := new(mdns.Msg)
	m.SetRcode(req, mdns.RcodeServerFailure)
	w.WriteMsg(m)
}
