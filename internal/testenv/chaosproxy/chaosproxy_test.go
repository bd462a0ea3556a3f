package chaosproxy

import (
	"bytes"
	"io"
	"net"
	"testing"
)

// echo is an upstream server that answers each read with the same bytes and reports, per
// connection, everything it received before the connection closed.
func echo(t *testing.T) (addr string, received chan []byte) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	received = make(chan []byte, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				var got bytes.Buffer
				buf := make([]byte, 1024)
				for {
					n, err := c.Read(buf)
					got.Write(buf[:n])
					if n > 0 {
						_, _ = c.Write(buf[:n])
					}
					if err != nil {
						received <- got.Bytes()
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String(), received
}

func dial(t *testing.T, p *Proxy) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func always(f Fault) Policy { return func(*Chunk) Fault { return f } }

func TestFaults(t *testing.T) {
	f := func(policy Policy, wantAnswer, wantUpstream string, wantLost uint64) {
		t.Helper()
		addr, received := echo(t)
		p := Start(t, Config{Upstream: addr})
		p.SetPolicy(policy)
		c := dial(t, p)
		if _, err := c.Write([]byte("abc")); err != nil {
			t.Fatal(err)
		}
		answer := make([]byte, len(wantAnswer))
		if _, err := io.ReadFull(c, answer); err != nil || string(answer) != wantAnswer {
			t.Fatalf("answer %q (%v), want %q", answer, err, wantAnswer)
		}
		if wantAnswer == "" {
			if n, err := c.Read(make([]byte, 1)); err == nil {
				t.Fatalf("read %d bytes after a cut, want the connection closed", n)
			}
		}
		_ = c.Close()
		if got := <-received; string(got) != wantUpstream {
			t.Fatalf("upstream received %q, want %q", got, wantUpstream)
		}
		if s := p.Stats(); s.LostAnswers != wantLost || s.Conns != 1 {
			t.Fatalf("stats %+v: want %d lost answers, 1 connection", s, wantLost)
		}
	}
	f(nil, "abc", "abc", 0)
	f(always(Pass), "abc", "abc", 0)
	f(always(Delay), "abc", "abc", 0)
	f(always(CutBefore), "", "", 0)
	f(always(CutAfter), "", "abc", 1) // the server got it and answered; the client heard nothing
	upper := func(c *Chunk) Fault { c.Data = bytes.ToUpper(c.Data); return Pass }
	f(upper, "ABC", "ABC", 0)
}

// A stalled connection forwards nothing more in either direction; the upstream connection closes
// when the client gives up.
func TestStall(t *testing.T) {
	addr, received := echo(t)
	p := Start(t, Config{Upstream: addr})
	p.SetPolicy(func(c *Chunk) Fault {
		if bytes.HasPrefix(c.Data, []byte("stall")) {
			return Stall
		}
		return Pass
	})
	c := dial(t, p)
	if _, err := c.Write([]byte("first")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, 5)); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"stall", "more"} {
		if _, err := c.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	_ = c.Close()
	if got := <-received; string(got) != "first" {
		t.Fatalf("upstream received %q, want only what came before the stall", got)
	}
	if s := p.Stats(); s.Faults[Stall] != 1 || s.Faults[Pass] != 1 {
		t.Fatalf("stats %+v: want one pass, one stall (chunks after it are not decided)", s)
	}
}

// Random follows its weights and its seed.
func TestRandom(t *testing.T) {
	w := map[Fault]int{Pass: 6, Stall: 1, CutAfter: 3}
	a, b := Random(42, w), Random(42, w)
	seen := map[Fault]int{}
	for range 1000 {
		fa, fb := a(&Chunk{}), b(&Chunk{})
		if fa != fb {
			t.Fatal("two policies with the same seed chose differently")
		}
		seen[fa]++
	}
	if seen[Delay] != 0 || seen[CutBefore] != 0 || seen[Pass] < 500 || seen[Stall] == 0 || seen[CutAfter] < 200 {
		t.Fatalf("choices %v do not follow weights %v", seen, w)
	}
}

// Close returns while connections are open, and closes them.
func TestCloseWithOpenConnections(t *testing.T) {
	addr, _ := echo(t)
	p := Start(t, Config{Upstream: addr})
	c := dial(t, p)
	if _, err := c.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	p.Close()
	p.Close()
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("the client's connection is still open after Close")
	}
}
