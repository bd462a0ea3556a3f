// Package chaosproxy is a TCP proxy for tests: it forwards each connection to an upstream server
// and, for every chunk the client sends (what one read returned), does what a Policy says: pass it
// on, delay it, stall the connection, or cut the connection before the chunk goes upstream or
// after it went (so the server acted on it but its answer is lost). With no policy it only
// forwards, which is also how a test makes a server "come back" on an address a client dials.
//
// It knows no protocol. A policy that needs one (to aim at a statement, or to rewrite it so the
// server refuses it) looks at the chunk's bytes itself.
package chaosproxy

import (
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Fault is what the proxy does with a chunk.
type Fault uint8

const (
	// Pass forwards the chunk.
	Pass Fault = iota
	// Delay forwards the chunk after Config.Delay.
	Delay
	// Stall forwards neither this chunk nor anything after it, in either direction, until the
	// client gives up and closes the connection: the client sees a server that stopped answering.
	Stall
	// CutBefore closes both sides without forwarding the chunk.
	CutBefore
	// CutAfter forwards the chunk (and whatever the client sends after it), drops everything the
	// server answers, and closes both sides once the server has answered (or after
	// Config.AnswerWait if it does not): the server acted on the request, the client never hears.
	CutAfter
	numFaults
)

var faultNames = [numFaults]string{"pass", "delay", "stall", "cut-before", "cut-after"}

func (f Fault) String() string {
	if f < numFaults {
		return faultNames[f]
	}
	return fmt.Sprintf("fault(%d)", uint8(f))
}

// Chunk is what a client sent in one read.
type Chunk struct {
	Conn  int    // the connection's number, from 0 in accept order
	Index int    // the chunk's number within its connection, from 0
	Data  []byte // the bytes; a policy may replace them (the proxy forwards Data as it is on return)
}

// Policy decides each chunk's fate. It is called from the connections' goroutines concurrently,
// one chunk at a time per connection, in order.
type Policy func(c *Chunk) Fault

// Random returns a policy that picks each chunk's fault at random in proportion to weights
// (faults left out have weight 0), from a generator seeded with seed. It is safe for concurrent
// use; the sequence of choices is the seed's, though which chunk gets which choice depends on how
// connections interleave.
func Random(seed uint64, weights map[Fault]int) Policy {
	var mu sync.Mutex
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	total := 0
	for f := range numFaults {
		total += weights[f]
	}
	if total <= 0 {
		panic("chaosproxy.Random: no positive weight")
	}
	return func(*Chunk) Fault {
		mu.Lock()
		r := rng.IntN(total)
		mu.Unlock()
		for f := range numFaults {
			if r -= weights[f]; r < 0 {
				return f
			}
		}
		return Pass
	}
}

// Config configures a Proxy.
type Config struct {
	// Addr is where the proxy listens; default 127.0.0.1:0 (a free port, see Proxy.Addr).
	Addr string
	// Upstream is the server's address.
	Upstream string
	// Delay is how long a Delay fault holds its chunk; default 20ms.
	Delay time.Duration
	// AnswerWait bounds how long a CutAfter fault waits for the server's answer; default 1s.
	AnswerWait time.Duration
}

// Stats counts what a proxy did.
type Stats struct {
	Conns  uint64           // connections accepted
	Faults map[Fault]uint64 // chunks per fault chosen (chunks after a Stall or CutAfter are not counted)
	// LostAnswers counts CutAfter faults whose server answered before the cut: requests the
	// server acted on whose answer the client never got.
	LostAnswers uint64
}

// Proxy forwards connections to an upstream server, injecting a Policy's faults. Its methods are
// safe for concurrent use.
type Proxy struct {
	cfg    Config
	ln     net.Listener
	policy atomic.Pointer[Policy]

	mu     sync.Mutex
	conns  map[*pair]struct{}
	closed bool
	wg     sync.WaitGroup

	accepted, lost atomic.Uint64
	faults         [numFaults]atomic.Uint64
}

// Start listens on cfg.Addr and proxies to cfg.Upstream until the test ends (or Close). It
// forwards everything until SetPolicy gives it a policy.
func Start(t testing.TB, cfg Config) *Proxy {
	t.Helper()
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.Delay <= 0 {
		cfg.Delay = 20 * time.Millisecond
	}
	if cfg.AnswerWait <= 0 {
		cfg.AnswerWait = time.Second
	}
	if cfg.Upstream == "" {
		t.Fatal("chaosproxy: no upstream address")
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		t.Fatalf("chaosproxy: listen on %s: %v", cfg.Addr, err)
	}
	p := &Proxy{cfg: cfg, ln: ln, conns: map[*pair]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.Close)
	return p
}

// Addr is the address the proxy listens on.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// SetPolicy makes pol decide the fate of the chunks read from now on (nil: forward everything).
func (p *Proxy) SetPolicy(pol Policy) {
	if pol == nil {
		p.policy.Store(nil)
		return
	}
	p.policy.Store(&pol)
}

// Stats returns what the proxy did so far.
func (p *Proxy) Stats() Stats {
	s := Stats{Conns: p.accepted.Load(), LostAnswers: p.lost.Load(), Faults: map[Fault]uint64{}}
	for f := range numFaults {
		s.Faults[f] = p.faults[f].Load()
	}
	return s
}

// Close stops listening, closes every connection and waits for the proxy's goroutines. It is
// idempotent.
func (p *Proxy) Close() {
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		_ = p.ln.Close()
		for c := range p.conns {
			c.close()
		}
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for id := 0; ; id++ {
		down, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		p.accepted.Add(1)
		c := &pair{down: down}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			_ = down.Close()
			return
		}
		p.conns[c] = struct{}{}
		p.wg.Add(1)
		p.mu.Unlock()
		go p.serve(id, c)
	}
}

// pair is a client connection and its upstream connection.
type pair struct {
	down, up net.Conn
	mu       sync.Mutex
	done     bool
	state    atomic.Uint32 // forwarding, stalled or muted
	answered chan struct{} // signalled when the server sends while muted
}

const (
	forwarding uint32 = iota
	stalled
	muted
)

func (c *pair) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done {
		return
	}
	c.done = true
	_ = c.down.Close()
	if c.up != nil {
		_ = c.up.Close()
	}
}

func (p *Proxy) serve(id int, c *pair) {
	defer p.wg.Done()
	defer func() {
		c.close()
		p.mu.Lock()
		delete(p.conns, c)
		p.mu.Unlock()
	}()
	up, err := net.DialTimeout("tcp", p.cfg.Upstream, 5*time.Second)
	if err != nil {
		return // the client sees its connection closed, as with a server that is down
	}
	c.mu.Lock()
	c.up, c.answered = up, make(chan struct{}, 1)
	done := c.done
	c.mu.Unlock()
	if done {
		_ = up.Close()
		return
	}
	var wg sync.WaitGroup
	defer func() { c.close(); wg.Wait() }() // closing ends the server-to-client goroutine
	wg.Add(1)
	go func() { // server to client
		defer wg.Done()
		defer c.close()
		buf := make([]byte, 32<<10)
		for {
			n, err := up.Read(buf)
			if n > 0 {
				switch c.state.Load() {
				case forwarding:
					if _, werr := c.down.Write(buf[:n]); werr != nil {
						return
					}
				case muted:
					select {
					case c.answered <- struct{}{}:
					default:
					}
				}
			}
			if err != nil {
				return
			}
		}
	}()

	buf := make([]byte, 32<<10)
	for i := 0; ; i++ {
		n, err := c.down.Read(buf)
		if n > 0 {
			if !p.chunk(id, i, c, buf[:n], &wg) {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// chunk handles one chunk from the client and reports whether to go on reading.
func (p *Proxy) chunk(id, i int, c *pair, data []byte, wg *sync.WaitGroup) bool {
	switch c.state.Load() {
	case stalled:
		return true // swallow, until the client closes
	case muted:
		_, err := c.up.Write(data)
		return err == nil
	}
	f := Pass
	if pol := p.policy.Load(); pol != nil {
		ch := &Chunk{Conn: id, Index: i, Data: data}
		f = (*pol)(ch)
		data = ch.Data
	}
	if f >= numFaults {
		f = Pass
	}
	p.faults[f].Add(1)
	switch f {
	case Delay:
		time.Sleep(p.cfg.Delay) // the fault itself, not synchronisation
	case Stall:
		c.state.Store(stalled)
		return true
	case CutBefore:
		return false
	case CutAfter:
		c.state.Store(muted)
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTimer(p.cfg.AnswerWait)
			defer t.Stop()
			select {
			case <-c.answered:
				p.lost.Add(1)
			case <-t.C:
			}
			c.close()
		}()
	}
	_, err := c.up.Write(data)
	return err == nil
}
